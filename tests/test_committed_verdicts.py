"""The gate's verdicts on the committed results are pinned: a redesign of readers, rules or names that
moves one of them fails here (``tests/data/committed_verdicts.json`` was made before the redesign)."""

import json

from committed_verdicts import GOLDEN, comparisons


def test_gate_verdicts_on_the_committed_results_are_unchanged():
    expected = json.loads(GOLDEN.read_text())
    got = json.loads(json.dumps(comparisons(), sort_keys=True))
    assert set(got) == set(expected)
    for name in expected:
        assert len(got[name]) == len(expected[name]) > 0, name
        for want, have in zip(expected[name], got[name]):
            assert have == want, f"{name}: {want['label']}"
