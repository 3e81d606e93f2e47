from osiris.core.fingerprint import canonical_json, fingerprint, short


def test_canonical_json_sorts_keys_at_every_level():
    assert canonical_json({"b": 1, "a": {"z": 1, "y": [2, {"d": 0, "c": 1}]}}) == (
        b'{"a":{"y":[2,{"c":1,"d":0}],"z":1},"b":1}'
    )


def test_equal_data_gives_equal_fingerprints_and_any_change_differs():
    a = fingerprint({"x": 1, "y": "é"})
    assert a == fingerprint({"y": "é", "x": 1})
    assert a != fingerprint({"x": 2, "y": "é"})
    assert a.startswith("sha256:") and len(short(a)) == 12
