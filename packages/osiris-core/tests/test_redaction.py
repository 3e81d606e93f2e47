from osiris.core.redaction import Redactor, is_secret_key, resolve_pointer, secret_values


def test_known_values_are_masked_wherever_they_appear():
    r = Redactor(["hunter2-long"])
    data = {"message": "login failed for hunter2-long", "nested": [{"x": "a hunter2-long b"}], "n": 3}
    assert r.redact(data) == {"message": "login failed for ***", "nested": [{"x": "a *** b"}], "n": 3}
    assert r.redact_text("url-encoded: hunter2%2Dlong? no, plain: hunter2-long").endswith("plain: ***")


def test_patterns_are_masked_without_knowing_the_value():
    r = Redactor()
    assert r.redact_text("postgresql://app:pa55@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert r.redact_text("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert r.redact_text("headers={'apikey': 'eyJhbGci'}") == "headers={'apikey': '***'}"
    assert r.redact_text("host=h password=s3cret user=u") == "host=h password=*** user=u"


def test_secret_keys_are_masked_but_primary_key_is_not():
    r = Redactor()
    out = r.redact({"password": "x", "service_role_key": "y", "primary_key": ["id"], "key": "k", "table": "t"})
    assert out == {"password": "***", "service_role_key": "***", "primary_key": ["id"], "key": "***", "table": "t"}
    assert is_secret_key("access_token") and not is_secret_key("primary_key") and not is_secret_key("monkey")


def test_secret_values_from_pointers_keys_and_dsns():
    config = {"resolved_connection": {"pass": "by-pointer", "dsn": "postgresql://u:dsnpw@h/db"}, "query": "q"}
    found = secret_values(config, ["/resolved_connection/pass"])
    assert {"by-pointer", "postgresql://u:dsnpw@h/db", "dsnpw"} <= found
    assert resolve_pointer(config, "/resolved_connection/missing") is None


def test_short_values_are_not_searched_in_text():
    assert Redactor(["ab"]).redact_text("about abba") == "about abba"
