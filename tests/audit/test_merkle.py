"""RFC 9162 Merkle tree: golden roots for trees of 1..8 leaves (the RFC 6962 test vectors), known proofs, and the
attack cases of transparency-dev/merkle's proof tests, each of which must be refused."""

from __future__ import annotations

import hashlib

import pytest

from audit.encoding import leaf_hash
from audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    LeafPyramid,
    ProofError,
    consistency_proof,
    inclusion_proof,
    root_of,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

LEAF_DATA = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f"]]  # fmt: skip
LEAVES = [leaf_hash(data) for data in LEAF_DATA]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# (leaf index, tree size, proof) — known-good inclusion proofs.
INCLUSION = [
    (0, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (5, 8, [h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
]  # fmt: skip

# (size1, size2, proof) — known-good consistency proofs.
CONSISTENCY = [
    (1, 8, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]),
    (6, 8, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
    (2, 5, [h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]),
    (6, 7, [h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]),
]  # fmt: skip


@pytest.mark.parametrize("size", range(1, 9))
def test_golden_roots_of_trees_of_one_to_eight_leaves(size):
    assert subtree_root(LEAVES, 0, size) == ROOTS[size - 1]
    assert root_of(LEAVES[:size]) == ROOTS[size - 1]


def test_the_empty_tree_has_the_hash_of_nothing():
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_compact_range_matches_the_recursive_definition_at_every_size():
    leaves = [leaf_hash(str(i).encode()) for i in range(130)]
    tree = CompactRange()
    for size, leaf in enumerate(leaves, start=1):
        tree.append(leaf)
        assert tree.root() == subtree_root(leaves, 0, size), size


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_known_inclusion_proofs_are_generated_and_verify(index, size, proof):
    assert inclusion_proof(LEAVES, index, size) == proof
    verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size - 1])


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_known_consistency_proofs_are_generated_and_verify(size1, size2, proof):
    assert consistency_proof(LEAVES, size1, size2) == proof
    verify_consistency(size1, size2, proof, ROOTS[size1 - 1], ROOTS[size2 - 1])


def test_every_generated_proof_verifies_for_trees_up_to_40():
    leaves = [leaf_hash(bytes([i])) for i in range(40)]
    roots = [root_of(leaves[:n]) for n in range(41)]
    for size in range(1, 41):
        for index in range(size):
            verify_inclusion(index, size, leaves[index], inclusion_proof(leaves, index, size), roots[size])
        for size1 in range(0, size + 1):
            verify_consistency(size1, size, consistency_proof(leaves, size1, size), roots[size1], roots[size])


def flipped(proof: list[bytes], position: int, bit: int) -> list[bytes]:
    changed = list(proof)
    changed[position] = bytes([changed[position][0] ^ bit]) + changed[position][1:]
    return changed


def corrupt_inclusion(index, size, proof, root, leaf):
    probes = [
        ("index - 1", index - 1, size, root, leaf, proof),
        ("index + 1", index + 1, size, root, leaf, proof),
        ("index ^ 2", index ^ 2, size, root, leaf, proof),
        ("size * 2", index, size * 2, root, leaf, proof),
        ("size / 2", index, size // 2, root, leaf, proof),
        ("wrong leaf", index, size, root, b"WrongLeaf", proof),
        ("empty root", index, size, EMPTY_ROOT, leaf, proof),
        ("random root", index, size, SOME_HASH, leaf, proof),
        ("trailing garbage", index, size, root, leaf, [*proof, b""]),
        ("trailing root", index, size, root, leaf, [*proof, root]),
        ("preceding garbage", index, size, root, leaf, [b"", *proof]),
        ("preceding root", index, size, root, leaf, [root, *proof]),
    ]
    probes += [(f"proof[{i}] bit 3 flipped", index, size, root, leaf, flipped(proof, i, 8)) for i in range(len(proof))]
    if proof:
        probes.append(("removed component", index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append(("inserted component", index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    return probes


def corrupt_consistency(size1, size2, root1, root2, proof):
    probes = [
        ("size1 - 1", size1 - 1, size2, root1, root2, proof),
        ("size1 + 1", size1 + 1, size2, root1, root2, proof),
        ("size1 ^ 2", size1 ^ 2, size2, root1, root2, proof),
        ("size2 * 2", size1, size2 * 2, root1, root2, proof),
        ("size2 / 2", size1, size2 // 2, root1, root2, proof),
        ("wrong root1", size1, size2, b"WrongRoot", root2, proof),
        ("wrong root2", size1, size2, root1, b"WrongRoot", proof),
        ("swapped roots", size1, size2, root2, root1, proof),
        ("empty proof", size1, size2, root1, root2, []),
        ("trailing garbage", size1, size2, root1, root2, [*proof, b""]),
        ("trailing root1", size1, size2, root1, root2, [*proof, root1]),
        ("trailing root2", size1, size2, root1, root2, [*proof, root2]),
        ("preceding garbage", size1, size2, root1, root2, [b"", *proof]),
        ("preceding root1", size1, size2, root1, root2, [root1, *proof]),
        ("preceding root2", size1, size2, root1, root2, [root2, *proof]),
        ("preceding proof[0]", size1, size2, root1, root2, [proof[0], *proof]),
        ("truncated proof", size1, size2, root1, root2, proof[:-1]),
        ("size going backwards", size2, size1, root2, root1, proof),
    ]
    probes += [
        (f"proof[{i}] bit 4 flipped", size1, size2, root1, root2, flipped(proof, i, 16)) for i in range(len(proof))
    ]
    return probes


INCLUSION_PROBES = [
    (f"leaf {index} of {size}: {name}", *probe)
    for index, size, proof in INCLUSION
    for name, *probe in corrupt_inclusion(index, size, proof, ROOTS[size - 1], LEAVES[index])
]
CONSISTENCY_PROBES = [
    (f"{size1}->{size2}: {name}", *probe)
    for size1, size2, proof in CONSISTENCY
    for name, *probe in corrupt_consistency(size1, size2, ROOTS[size1 - 1], ROOTS[size2 - 1], proof)
]


@pytest.mark.parametrize(("case", "index", "size", "root", "leaf", "proof"), INCLUSION_PROBES, ids=lambda v: v)
def test_a_corrupted_inclusion_proof_is_refused(case, index, size, root, leaf, proof):
    with pytest.raises(ProofError):
        verify_inclusion(index, size, leaf, proof, root)


@pytest.mark.parametrize(("case", "size1", "size2", "root1", "root2", "proof"), CONSISTENCY_PROBES, ids=lambda v: v)
def test_a_corrupted_consistency_proof_is_refused(case, size1, size2, root1, root2, proof):
    with pytest.raises(ProofError):
        verify_consistency(size1, size2, proof, root1, root2)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_in_trivial_trees_with_wrong_hashes_is_refused(index, size):
    for leaf, root in [(SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)]:
        with pytest.raises(ProofError):
            verify_inclusion(index, size, leaf, [], root)


def test_a_single_leaf_tree_has_an_empty_proof_and_its_leaf_as_root():
    leaf = leaf_hash(b"data")
    verify_inclusion(0, 1, leaf, [], leaf)
    for bad_leaf, bad_root in [(leaf, b""), (b"", leaf), (b"", b"")]:
        with pytest.raises(ProofError):
            verify_inclusion(0, 1, bad_leaf, [], bad_root)


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "good"),
    [
        (0, 0, b"one", b"two", [], False),
        (1, 1, b"one", b"two", [], False),
        (0, 0, b"one", b"one", [], True),
        (0, 1, b"one", b"two", [], True),
        (1, 1, b"two", b"two", [], True),
        (1, 0, b"one", b"two", [], False),  # time travel to the past
        (2, 1, b"one", b"two", [], False),
        (1, 2, b"one", b"two", [], False),  # empty proof
        (0, 0, EMPTY_ROOT, b"two", [], False),
        (1, 1, EMPTY_ROOT, b"two", [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),  # roots match but the proof is not empty
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_consistency_edge_cases(size1, size2, root1, root2, proof, good):
    if good:
        verify_consistency(size1, size2, proof, root1, root2)
    else:
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, proof, root1, root2)


@pytest.mark.parametrize("first", [0, 1, 5, 8, 13, 64])
def test_bulk_appends_build_the_same_tree_as_appending_leaf_by_leaf(first):
    """The verifier appends leaves in bulk (`extend`, and `extend_from` a pyramid a worker built); every root it
    then checks must be the root of the same tree, at whatever offsets and sizes the bulk appends fall."""
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(first + 150)]
    one_by_one = CompactRange()
    for leaf in leaves[:first]:
        one_by_one.append(leaf)
    edge = one_by_one.right_edge()
    bulk, from_pyramid = CompactRange.from_right_edge(first, edge), CompactRange.from_right_edge(first, edge)
    pyramid = LeafPyramid(first, b"".join(leaves[first:]))
    done = first
    for step in [1, 2, 3, 7, 16, 1, 31, 64, 25]:
        for leaf in leaves[done : done + step]:
            one_by_one.append(leaf)
        bulk.extend(b"".join(leaves[done : done + step]))
        from_pyramid.extend_from(pyramid, step)
        done += step
        assert bulk.size == from_pyramid.size == one_by_one.size == done
        assert bulk.root() == from_pyramid.root() == one_by_one.root() == root_of(leaves[:done])


def test_a_pyramid_answers_only_for_aligned_subtrees_inside_its_run():
    pyramid = LeafPyramid(3, b"".join(LEAVES[3:8]))
    assert pyramid.subtree(4, 2) == subtree_root(LEAVES, 4, 8)
    assert pyramid.subtree(3, 0) == LEAVES[3]
    for index, height in [(2, 0), (3, 1), (0, 2), (8, 0), (4, 3)]:
        with pytest.raises(ProofError):
            pyramid.subtree(index, height)
    with pytest.raises(ProofError):
        CompactRange().extend(b"\x00" * 33)
