"""The memoised pieces of SigV4's canonical request give what the plain computation gives."""

from __future__ import annotations

import itertools

from minicloud.aws.auth import canonical
from minicloud.aws.auth.canonical import canonical_query, decoded_pairs, presigned_params, without_signature

QUERY = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261129%2Fus-east-1%2Fs3%2Faws4_request"
         "&X-Amz-Date=20261129T051000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host")


def _plain(raw: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, value in decoded_pairs(raw):
        params.setdefault(name, value)
    return params


def test_signature_is_split_off_as_sent() -> None:
    rest, signatures = without_signature(QUERY + "&X-Amz-Signature=ab%63d&versionId=v")
    assert rest == QUERY + "&versionId=v"
    assert signatures == ["ab%63d"]
    assert without_signature(QUERY) == (QUERY, [])


def test_presigned_params_are_the_first_decoded_values_whatever_the_signature() -> None:
    for signature in ("a" * 64, "b" * 64, "ab%63d"):
        raw = f"{QUERY}&X-Amz-Signature={signature}&X-Amz-Expires=60"
        assert presigned_params(raw) == _plain(raw)
    assert presigned_params(QUERY)["X-Amz-Credential"] == "AKID/20261129/us-east-1/s3/aws4_request"
    assert "X-Amz-Signature" not in presigned_params(QUERY)


def test_a_percent_encoded_signature_name_keeps_its_place() -> None:
    raw = f"X-Amz-Signatur%65=first&{QUERY}&X-Amz-Signature=second"
    assert presigned_params(raw)["X-Amz-Signature"] == "first"
    raw = f"X-Amz-Signature=first&{QUERY}&X-Amz-Signatur%65=second"
    assert presigned_params(raw)["X-Amz-Signature"] == "first"


def test_canonical_query_leaves_every_signature_out_and_is_the_same_when_remembered() -> None:
    raw = f"{QUERY}&X-Amz-Signature={'c' * 64}&X-Amz-Signatur%65=x&a=%7e+b"
    first = canonical_query(raw, presigned=True)
    assert first == canonical_query(raw, presigned=True)
    assert "Signatur" not in first
    assert "a=~%2Bb" in first
    assert canonical_query(raw, presigned=False) != first  # header-signed: the parameter is signed


def test_the_memo_is_bounded() -> None:
    for i in range(canonical._MEMO_ENTRIES + 10):
        canonical_query(f"prefix={i}", presigned=False)
    assert len(canonical._canonical_queries) <= canonical._MEMO_ENTRIES


def test_without_signature_is_the_split_filter_join_it_shortcuts() -> None:
    atoms = ["a=1", "", "X-Amz-Signature=s", "X-Amz-Signature=", "b=xX-Amz-Signature=z", "X-Amz-Signature=t=u"]
    for n in range(5):
        for combo in itertools.product(atoms, repeat=n):
            raw = "&".join(combo)
            parts = raw.split("&")
            expected = ("&".join(p for p in parts if not p.startswith("X-Amz-Signature=")),
                        [p[len("X-Amz-Signature="):] for p in parts if p.startswith("X-Amz-Signature=")])
            assert without_signature(raw) == expected, raw


def test_a_remembered_presigned_parse_is_the_fresh_parse_with_the_signature_it_carries() -> None:
    from minicloud.aws.auth.sigv4 import AuthFailure, _parse_presigned, _parse_presigned_query
    from minicloud.aws.request import AwsRequest

    for tail in ("", "&X-Amz-Signature=" + "d" * 64, "&X-Amz-Signature=", "&X-Amz-Signature=%C3%BC",
                 "&X-Amz-Signatur%65=first&X-Amz-Signature=" + "e" * 64):
        for signature in ("a" * 64, "b" * 64, "ab%63d"):
            raw = f"{QUERY}&X-Amz-Signature={signature}{tail}"
            for _ in range(2):  # the second time from the memo when it may be kept
                try:
                    expected: object = _parse_presigned_query(raw)
                except AuthFailure as failure:
                    expected = failure.message
                try:
                    got: object = _parse_presigned(AwsRequest("GET", "/b/k", raw))
                except AuthFailure as failure:
                    got = failure.message
                assert got == expected, raw


def test_presign_parameters_are_found_where_a_split_finds_them() -> None:
    from minicloud.aws.auth.sigv4 import _PRESIGN_PARAMS, _has_presign_params

    atoms = ["a=1", "", "X-Amz-Signature=s", "xX-Amz-Credential=c", "X-Amz-Algorithm=", "b=X-Amz-Credential=",
             "X-Amz-Date=1"]
    for n in range(4):
        for combo in itertools.product(atoms, repeat=n):
            raw = "&".join(combo)
            assert _has_presign_params(raw) == any(p.startswith(_PRESIGN_PARAMS) for p in raw.split("&")), raw
