"""Every sentence backed: each claim README.md and the lessons make is tied to a test that can fail, or to
figures of committed benchmark output (tests/support/claims.py says how claims are tagged and registered).

These tests read files and syntax trees only; they run no notebook and no test they point at.
"""

import re

import pytest

from support import claims

REGISTER = claims.register()
TESTS = claims.all_test_functions()
BLOCKS = claims.all_blocks()


@pytest.mark.claim("readme.claims-register")
def test_every_block_of_prose_names_its_claims_or_says_it_makes_none():
    untagged = [block.short() for block in BLOCKS if not block.ids]
    assert untagged == [], ("prose without a claim tag (add <!-- claim: id --> or <!-- claim: none -->):\n"
                            + "\n".join(untagged))


def test_none_stands_alone():
    mixed = [block.short() for block in BLOCKS if claims.NONE in block.ids and len(block.ids) > 1]
    assert mixed == []


@pytest.mark.claim("readme.claims-register")
def test_every_tag_names_a_registered_claim():
    assert claims.NONE not in REGISTER
    unknown = {claim: where for claim, where in claims.all_tags().items()
               if claim != claims.NONE and claim not in REGISTER}
    assert unknown == {}, "tags naming no claim of tests/claims.toml"


def test_every_registered_claim_is_made_somewhere():
    used = claims.all_tags()
    assert sorted(set(REGISTER) - set(used)) == [], "claims no README or lesson sentence makes: remove them"


@pytest.mark.claim("readme.claims-register")
def test_every_claim_is_backed_by_a_test_that_acknowledges_it_or_by_benchmark_figures():
    problems = []
    for claim, entry in sorted(REGISTER.items()):
        if not entry.get("text", "").strip():
            problems.append(f"{claim}: no text")
        if not entry.get("backed_by"):
            problems.append(f"{claim}: nothing backs it")
        for item in entry.get("backed_by", []):
            if "::" not in item:
                problems += [f"{claim}: {problem}" for problem in [claims.benchmark_value(item)[1]] if problem]
            elif item not in TESTS:
                problems.append(f"{claim}: no test {item}")
            elif claim not in TESTS[item]:
                problems.append(f"{claim}: {item} does not acknowledge it (@pytest.mark.claim({claim!r}))")
    assert problems == [], "\n".join(problems)


@pytest.mark.claim("readme.claims-register")
def test_every_acknowledged_claim_lists_the_test_that_acknowledges_it():
    wrong = [f"{node} acknowledges {claim!r}, which "
             + ("is not registered" if claim not in REGISTER else "does not list it in backed_by")
             for node, marked in TESTS.items() for claim in marked
             if claim not in REGISTER or node not in REGISTER[claim].get("backed_by", [])]
    assert wrong == []


# --- the register's own checker can fail ---------------------------------------------------------

def test_an_untagged_paragraph_a_stray_id_and_a_tagged_table_are_told_apart():
    markdown = ("Keras stores the learning rate as float32.\n\nIt does. <!-- claim: a -->\n\n"
                "| a | b |\n|---|---|\n| 1 | 2 |\n<!-- claim: b, c -->\n\n$$x = 1$$\n\n"
                "* one <!-- claim: none -->\n* two\n\n<p>Hidden text in HTML</p>\n")
    found = {block.text.splitlines()[0]: block.ids for block in claims.blocks("doc", markdown)}
    assert found == {"Keras stores the learning rate as float32.": (), "It does. <!-- claim: a -->": ("a",),
                     "| a | b |": ("b", "c"), "one <!-- claim: none -->": ("none",), "two": (),
                     "<p>Hidden text in HTML</p>": ()}


def test_a_benchmark_backing_must_exist_and_meet_its_comparison():
    assert claims.benchmark_value("benchmarks/results/lesson02.json:speedup_over_fit >= 1")[1] is None
    assert "not >= 1000000" in claims.benchmark_value("benchmarks/results/lesson02.json:speedup_over_fit >= 1000000")[1]
    assert "has no" in claims.benchmark_value("benchmarks/results/lesson02.json:no_such_key")[1]
    assert "not committed" in claims.benchmark_value("benchmarks/results/nothing.json:x")[1]


def test_the_claim_marker_is_registered_with_pytest():
    import tomllib

    markers = tomllib.loads((claims.ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    assert any(re.match(r"claim\b", marker) for marker in markers)
