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

    def extend_from(self, pyramid: LeafPyramid, count: int) -> None:
        """Append the next `count` leaves, which `pyramid` holds (from index `self.size` on): the same tree as
        `append` one by one, with each perfect subtree's hash taken from the pyramid, so O(log n) work here."""
        done = 0
        while done < count:
            height = (count - done).bit_length() - 1
            if self.size:
                height = min(height, (self.size & -self.size).bit_length() - 1)
            value = pyramid.subtree(self.size, height)
            width = 1 << height
            while self._stack and self._stack[-1][0] == height:
                _, left = self._stack.pop()
                value = node_hash(left, value)
                height += 1
            self._stack.append((height, value))
            self.size += width
            done += width

    def extend(self, leaves: bytes) -> None:
        """Append many leaf hashes at once, given back to back (32 bytes each): the same tree as `append` one by
        one, built a perfect subtree at a time, level by level, which costs one hash and far fewer Python objects
        per leaf (the verifier appends millions)."""
        if len(leaves) % HASH_SIZE:
            raise ProofError(f"{len(leaves)} bytes are not a whole number of {HASH_SIZE}-byte leaf hashes")
        count, done = len(leaves) // HASH_SIZE, 0
        while done < count:
            # The largest perfect subtree that starts at the current size (aligned to its width) and fits.
            height = (count - done).bit_length() - 1
            if self.size:
                height = min(height, (self.size & -self.size).bit_length() - 1)
            width = 1 << height
            value = _perfect_root(leaves[done * HASH_SIZE : (done + width) * HASH_SIZE])
            while self._stack and self._stack[-1][0] == height:
                _, left = self._stack.pop()
                value = node_hash(left, value)
                height += 1
            self._stack.append((height, value))
            self.size += width
            done += width

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        value = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            value = node_hash(left, value)
        return value


class LeafPyramid:
    """Every aligned perfect subtree's hash within a run of consecutive leaves, level by level.

    Level 0 holds the leaf hashes from tree index `first` on, back to back; level h+1 the hashes of the pairs of
    level-h nodes that are siblings in the whole tree (node j covers leaves j*2^h .. (j+1)*2^h - 1). Building it
    costs one hash per leaf, in a few large passes; afterwards any aligned subtree inside the run is a lookup.
    The verifier's workers build one per chunk, so that the process that joins the chunks does almost no hashing.
    """

    def __init__(self, first: int, leaves: bytes) -> None:
        if len(leaves) % HASH_SIZE:
            raise ProofError(f"{len(leaves)} bytes are not a whole number of {HASH_SIZE}-byte leaf hashes")
        sha256 = hashlib.sha256
        self.first = first
        self.levels = [leaves]
        self.starts = [first]  # the index, at its level, of each level's first node
        start, level = first, leaves
        while len(level) >= 2 * HASH_SIZE:
            skip = (start & 1) * HASH_SIZE  # a right child whose left sibling lies before the run
            pairs = (len(level) - skip) // (2 * HASH_SIZE)
            if not pairs:
                break
            level = b"".join([sha256(b"\x01" + level[i : i + 64]).digest() for i in range(skip, skip + pairs * 64, 64)])
            start = (start + 1) >> 1
            self.levels.append(level)
            self.starts.append(start)

    def subtree(self, index: int, height: int) -> bytes:
        """The hash of the perfect subtree of 2^height leaves from tree index `index` (aligned, inside the run)."""
        node = index >> height
        if index != node << height or height >= len(self.levels):
            raise ProofError(f"no subtree of height {height} at leaf {index} in this run")
        position = (node - self.starts[height]) * HASH_SIZE
        value = self.levels[height][position : position + HASH_SIZE]
        if position < 0 or len(value) != HASH_SIZE:
            raise ProofError(f"no subtree of height {height} at leaf {index} in this run")
        return value


def _perfect_root(level: bytes) -> bytes:
    """MTH of a power-of-two number of leaf hashes given back to back: each level hashed in one pass."""
    sha256 = hashlib.sha256
    while len(level) > HASH_SIZE:
        level = b"".join([sha256(b"\x01" + level[i : i + 64]).digest() for i in range(0, len(level), 64)])
    return level


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
