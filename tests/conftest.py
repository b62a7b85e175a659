"""The tests' own session plumbing: the long commands of tests/early.py start in the background as the
session starts, and the modules that read them run last, so that the two overlap."""

from __future__ import annotations

import pytest

import early


def _early_names(item) -> list[str]:
    return [name for name in getattr(item, "fixturenames", ()) if name in early.names()]


@pytest.hookimpl(trylast=True)          # after -k / -m have deselected what they will
def pytest_collection_modifyitems(config, items):
    # a stable partition: every module whose tests read a background command moves after the others,
    # in the order it had; the commands then run in that order
    readers = {item.nodeid.split("::", 1)[0] for item in items if _early_names(item)}
    items[:] = [i for i in items if i.nodeid.split("::", 1)[0] not in readers] + \
               [i for i in items if i.nodeid.split("::", 1)[0] in readers]


def pytest_collection_finish(session):
    if session.config.option.collectonly:
        return
    wanted = []
    for item in session.items:
        wanted += [name for name in _early_names(item) if name not in wanted]
    early.start(wanted)


def pytest_sessionfinish(session, exitstatus):
    early.stop()


def pytest_terminal_summary(terminalreporter):
    lines = early.summary()
    if lines:
        terminalreporter.section("background commands (tests/early.py)")
        for line in lines:
            terminalreporter.write_line(line)
