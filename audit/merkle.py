"""The RFC 9162 Merkle tree over audit leaf hashes: roots, inclusion and consistency proofs, and their checks.

Everything works on leaf hashes (`audit.encoding.leaf_hash`), never on records, so the same code serves the
appliance (which builds proofs from the database) and the auditor's offline verifier (which rebuilds roots from a
bundle). Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step; any deviation is a failure that says
what was wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from audit.encoding import node_hash

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof does not verify; the message says which check failed."""


def _largest_power_of_two_below(n: int) -> int:
    """k such that k < n <= 2k (n >= 2): the split point of RFC 9162's MTH."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    """MTH(D[start:end]) over leaf hashes."""
    size = end - start
    if size == 0:
        return EMPTY_ROOT
    if size == 1:
        return leaves[start]
    split = start + _largest_power_of_two_below(size)
    return node_hash(subtree_root(leaves, start, split), subtree_root(leaves, split, end))


class CompactRange:
    """The root of a growing log in O(log n) memory: one hash per perfect subtree on the right edge.

    Appending leaf after leaf and asking `root()` at any size gives MTH of the leaves so far; the verifier uses
    this to check every checkpoint while streaming a log of any length once.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (height, hash), heights strictly decreasing

    @classmethod
    def from_right_edge(cls, size: int, hashes: list[bytes]) -> CompactRange:
        """Rebuild the range of a tree of `size` from its perfect subtrees' hashes, largest first."""
        heights = [bit for bit in range(size.bit_length() - 1, -1, -1) if size >> bit & 1]
        if len(hashes) != len(heights) or any(len(h) != 32 for h in hashes):
            raise ProofError(f"a tree of size {size} has {len(heights)} right-edge hashes, not {len(hashes)}")
        tree = cls()
        tree.size = size
        tree._stack = list(zip(heights, hashes, strict=True))
        return tree

    def right_edge(self) -> list[bytes]:
        """The perfect subtrees' hashes, largest first: enough to go on appending (see `from_right_edge`)."""
        return [value for _, value in self._stack]

    def append(self, leaf: bytes) -> None:
        height, value = 0, leaf
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            value = node_hash(left, value)
            height += 1
        self._stack.append((height, value))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


def root_of(leaves: Sequence[bytes]) -> bytes:
    tree = CompactRange()
    for leaf in leaves:
        tree.append(leaf)
    return tree.root()


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1."""
    if not 0 <= index < size <= len(leaves):
        raise ProofError(f"no inclusion proof for leaf {index} in a tree of size {size}")

    def path(m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return [*path(m, start, start + k), subtree_root(leaves, start + k, end)]
        return [*path(m - k, start + k, end), subtree_root(leaves, start, start + k)]

    return path(index, 0, size)


def consistency_proof(leaves: Sequence[bytes], size1: int, size2: int) -> list[bytes]:
    """PROOF(size1, D[0:size2]) of RFC 9162 §2.1.4.1; empty when size1 is 0 or equals size2."""
    if not 0 <= size1 <= size2 <= len(leaves):
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    if size1 in (0, size2):
        return []

    def subproof(m: int, start: int, end: int, whole: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if whole else [subtree_root(leaves, start, end)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return [*subproof(m, start, start + k, whole), subtree_root(leaves, start + k, end)]
        return [*subproof(m - k, start + k, end, False), subtree_root(leaves, start, start + k)]

    return subproof(size1, 0, size2, True)


def _check_hashes(proof: Sequence[bytes], *named: tuple[str, bytes]) -> None:
    for name, value in named:
        if len(value) != HASH_SIZE:
            raise ProofError(f"{name} is {len(value)} bytes, not {HASH_SIZE}")
    for position, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise ProofError(f"proof element {position} is {len(value)} bytes, not {HASH_SIZE}")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for `leaf` at `index` in a tree of `size` (RFC 9162 §2.1.3.2)."""
    _check_hashes(proof, ("leaf hash", leaf))
    if index < 0 or index >= size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, result = index, size - 1, leaf
    for value in proof:
        if sn == 0:
            raise ProofError("proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(value, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, value)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof is shorter than the tree is deep")
    return result


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise ProofError unless `proof` shows `leaf` at `index` in the tree of `size` with `root`."""
    _check_hashes(proof, ("root", root))
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError(f"inclusion proof for leaf {index} does not lead to the root of size {size}")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Raise ProofError unless the tree of `size2`/`root2` extends the tree of `size1`/`root1` (§2.1.4.2)."""
    if size1 < 0 or size2 < size1:
        raise ProofError(f"tree size went backwards: {size1} -> {size2}")
    if size1 == size2:
        if proof:
            raise ProofError("proof between equal sizes must be empty")
        if root1 != root2:
            raise ProofError(f"two different roots for the same size {size1}")
        return
    if size1 == 0:
        if proof:
            raise ProofError("proof from the empty tree must be empty")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    _check_hashes(proof, ("first root", root1), ("second root", root2))
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is the first node of the path
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first = second = path[0]
    for value in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            first = node_hash(value, first)
            second = node_hash(value, second)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            second = node_hash(second, value)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if first != root1:
        raise ProofError(f"consistency proof does not lead to the root of size {size1}")
    if second != root2:
        raise ProofError(f"consistency proof does not lead to the root of size {size2}")
