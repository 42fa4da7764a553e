"""TOTP against the RFCs' own test vectors: RFC 6238 Appendix B (SHA-1, SHA-256, SHA-512, 8
digits, 30-second steps) and RFC 4226 Appendix D (HOTP, 6 digits)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldncare.web import totp

# RFC 6238 Appendix B: the seeds are the ASCII digits "1234567890" repeated to the key size of
# each hash (20, 32 and 64 bytes).
SEED = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
APPENDIX_B = [
    (59, "sha1", "94287082"),
    (59, "sha256", "46119246"),
    (59, "sha512", "90693936"),
    (1111111109, "sha1", "07081804"),
    (1111111109, "sha256", "68084774"),
    (1111111109, "sha512", "25091201"),
    (1111111111, "sha1", "14050471"),
    (1111111111, "sha256", "67062674"),
    (1111111111, "sha512", "99943326"),
    (1234567890, "sha1", "89005924"),
    (1234567890, "sha256", "91819424"),
    (1234567890, "sha512", "93441116"),
    (2000000000, "sha1", "69279037"),
    (2000000000, "sha256", "90698825"),
    (2000000000, "sha512", "38618901"),
    (20000000000, "sha1", "65353130"),
    (20000000000, "sha256", "77737706"),
    (20000000000, "sha512", "47863826"),
]


@pytest.mark.parametrize(("unix_time", "digest", "expected"), APPENDIX_B)
def test_rfc6238_appendix_b_vectors(unix_time: int, digest: str, expected: str) -> None:
    assert totp.totp(SEED[digest], unix_time, digits=8, digest=digest) == expected


# RFC 4226 Appendix D: HOTP of the secret "12345678901234567890", counters 0-9.
APPENDIX_D = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]


@pytest.mark.parametrize(("counter", "expected"), list(enumerate(APPENDIX_D)))
def test_rfc4226_appendix_d_vectors(counter: int, expected: str) -> None:
    assert totp.hotp(SEED["sha1"], counter) == expected


def _b32(key: bytes) -> str:
    return base64.b32encode(key).decode()


def test_a_code_is_accepted_one_step_either_side_and_no_further() -> None:
    secret = _b32(SEED["sha1"])
    now = 1_800_000_015.0
    step = totp.time_step(now)
    key = SEED["sha1"]
    assert totp.matching_step(secret, totp.hotp(key, step), now) == step
    assert totp.matching_step(secret, totp.hotp(key, step - 1), now) == step - 1
    assert totp.matching_step(secret, totp.hotp(key, step + 1), now) == step + 1
    # Two steps away (a minute old): refused, unless it happens to equal a valid code.
    old = totp.hotp(key, step - 2)
    if old not in {totp.hotp(key, s) for s in (step - 1, step, step + 1)}:
        assert totp.matching_step(secret, old, now) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 34 5x"])
def test_anything_but_six_digits_is_not_a_code(code: str) -> None:
    assert totp.matching_step(_b32(SEED["sha1"]), code, 59) is None


def test_the_otpauth_uri_names_the_issuer_user_and_secret() -> None:
    uri = totp.otpauth_uri("JBSWY3DPEHPK3PXP", "dr.grey")
    assert uri.startswith("otpauth://totp/ldncare%3Adr.grey?")
    assert "secret=JBSWY3DPEHPK3PXP" in uri and "issuer=ldncare" in uri and "period=30" in uri


def test_ten_recovery_codes_are_distinct_and_hash_ignoring_case_and_dashes() -> None:
    codes = totp.new_recovery_codes()
    assert len(set(codes)) == 10
    assert all(len(c) == 11 and c[5] == "-" for c in codes)
    code = codes[0]
    assert totp.hash_recovery_code(code) == totp.hash_recovery_code(code.upper().replace("-", " "))
    assert totp.hash_recovery_code(code) != totp.hash_recovery_code(codes[1])


@given(st.binary(min_size=10, max_size=64), st.integers(min_value=0, max_value=2**40))
def test_every_code_is_six_digits_and_verifies_in_its_own_step(key: bytes, t: int) -> None:
    """Safety invariant: for any key and time, the code is 6 digits and matches its own step."""
    code = totp.totp(key, t)
    assert len(code) == 6 and code.isdigit()
    step = totp.matching_step(_b32(key), code, t)
    assert step is not None and abs(step - totp.time_step(t)) <= 1
