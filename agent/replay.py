"""Durable store of accepted command ids (PROTOCOL §3, check 7).

"Accepted jtis are stored durably until their exp has passed, across restarts."
For each accepted jti the digest of its token is kept, so that the very same
token arriving again (a retained schedule after a restart) is told apart from a
different token reusing the jti: the first is acked `duplicate`, the second is
rejected `replayed`. Only accepted commands are remembered (after checks 8 and
9 passed); the caller does `seen` at check 7 and `remember` on acceptance.
"""

from __future__ import annotations

from agent.db import Database

# Same leeway as the exp check (§3 check 6): a token is kept at least as long
# as it could still be accepted.
LEEWAY_S = 30
MAX_JTI_LEN = 64


class ReplayConflict(Exception):
    """`remember` of a jti already stored with a different token digest."""


def _check_jti(jti: object) -> str:
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_LEN:
        raise ValueError(f"jti must be a non-empty str of at most {MAX_JTI_LEN} chars, got {jti!r}")
    return jti


class ReplayStore:
    """Accepted jti -> token digest, in `state.db`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def seen(self, jti: str) -> str | None:
        """The token digest stored for `jti`, or None if it was never accepted (or pruned)."""
        _check_jti(jti)
        with self._db.read() as conn:
            row = conn.execute("SELECT digest FROM replay WHERE jti = ?", (jti,)).fetchone()
        return None if row is None else str(row[0])

    def remember(self, jti: str, digest: str, exp: int) -> None:
        """Store an accepted jti durably until `exp` (+ leeway) has passed.

        Remembering the same jti and digest again is a no-op (keeps the later exp);
        a different digest raises ReplayConflict, because the first accepted token
        is the one later duplicates must match.
        """
        _check_jti(jti)
        if not isinstance(digest, str) or not digest:
            raise ValueError(f"digest must be a non-empty str, got {digest!r}")
        if isinstance(exp, bool) or not isinstance(exp, int):
            raise ValueError(f"exp must be an int (Unix seconds), got {exp!r}")
        with self._db.write() as conn:
            row = conn.execute("SELECT digest FROM replay WHERE jti = ?", (jti,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO replay (jti, digest, exp) VALUES (?, ?, ?)", (jti, digest, exp)
                )
            elif str(row[0]) != digest:
                raise ReplayConflict(f"jti {jti!r} already accepted with another token")
            else:
                conn.execute("UPDATE replay SET exp = MAX(exp, ?) WHERE jti = ?", (exp, jti))

    def prune(self, before: float) -> int:
        """Forget jtis whose exp + LEEWAY_S is before `before`; returns how many.

        `before` is the caller's trusted time, or its lower bound for the time
        (largest verified iat) while the clock is untrusted, so a clock that
        jumps forward by mistake cannot make the device forget live tokens
        unless it is trusted.
        """
        if isinstance(before, bool) or not isinstance(before, int | float):
            raise ValueError(f"prune 'before' must be Unix seconds, got {before!r}")
        with self._db.write() as conn:
            n = conn.execute(
                "DELETE FROM replay WHERE exp + ? < ?", (LEEWAY_S, float(before))
            ).rowcount
        return int(n)

    def count(self) -> int:
        with self._db.read() as conn:
            row = conn.execute("SELECT COUNT(*) FROM replay").fetchone()
        return int(row[0])
