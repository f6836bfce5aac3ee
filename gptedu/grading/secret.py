"""The course secret: hidden cases (sizes, seeds, inputs) derive from it, so no one can precompute them.

The secret is created when the instructor sets up the course and lives in the course folder only (never in the
package, the release, the feedback or the repository). Components turn it into case parameters with :func:`derive`.
"""

from __future__ import annotations

import hashlib
import hmac


def derive(secret: bytes, *labels: str | int, low: int = 0, high: int = 2**31 - 1) -> int:
    """An integer in ``[low, high]`` determined by ``secret`` and ``labels`` (HMAC-SHA256), e.g.
    ``derive(secret, "head", "hidden", 0, "seed")``. Different labels give independent values."""
    if high < low:
        raise ValueError(f"derive: empty range [{low}, {high}]")
    message = "\x1f".join(str(label) for label in labels).encode()
    value = int.from_bytes(hmac.new(secret, message, hashlib.sha256).digest()[:8], "big")
    return low + value % (high - low + 1)
