"""`mysql_client.pymysql_module`: pymysql without `cryptography` until an RSA password exchange needs it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from osiris.drivers.sql.mysql_client import _HideCryptography

pytest.importorskip("cryptography")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)


def test_pymysql_is_imported_without_cryptography_and_its_rsa_exchange_still_works():
    proc = _python(
        """
        import sys
        from osiris.drivers.sql.mysql_client import pymysql_module
        pymysql = pymysql_module()
        import pymysql._auth as auth
        assert not [m for m in sys.modules if m.split(".")[0] == "cryptography"], "cryptography was imported"
        assert auth._have_cryptography

        # What `caching_sha2_password` / `sha256_password` do over a connection without TLS.
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        salt = b"0123456789abcdefghij"
        sent = auth.sha2_rsa_encrypt(b"s3cret", salt, pem)
        oaep = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        assert key.decrypt(sent, oaep) == auth._xor_password(b"s3cret" + b"\\0", salt)
        print("ok")
        """
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_cryptography_imported_first_is_used_as_it_is():
    proc = _python(
        """
        import cryptography.hazmat.primitives.serialization as real
        from osiris.drivers.sql.mysql_client import pymysql_module
        pymysql_module()
        import pymysql._auth as auth
        assert auth.serialization is real and auth._have_cryptography
        print("ok")
        """
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_only_pymysqls_own_import_of_cryptography_is_hidden():
    """Another thread importing `cryptography` while pymysql is imported is not affected."""
    hide = _HideCryptography()
    assert hide.find_spec("cryptography.hazmat.primitives.hashes") is None  # not asked by pymysql._auth
    assert hide.find_spec("json") is None
    scope = {"__name__": "pymysql._auth", "hide": hide}
    with pytest.raises(ModuleNotFoundError):
        exec("hide.find_spec('cryptography.hazmat.primitives.hashes')", scope)
    exec("found = hide.find_spec('zlib')", scope)
    assert scope["found"] is None
