"""The nudges: an incident's processing is asked for once per gathering, by the process's thread."""

import logging
import os
import time

import pytest
from flask import current_app

from crisis.tasks.nudges import Nudges


def test_reactions_of_one_incident_are_asked_for_once(app):
    asked = []
    nudges = Nudges(lambda incident, reaction: asked.append((incident, reaction, current_app.name)),
                    seconds=3600)
    for incident, reaction in [(1, 10), (1, 11), (2, 20), (1, 12)]:
        nudges.add(app, incident, reaction)
    assert asked == []  # gathered, not asked in the webhook
    nudges.flush()
    assert asked == [(1, 10, app.name), (2, 20, app.name)]  # in the app's context
    nudges.flush()
    assert len(asked) == 2  # asked once: what was asked for is no longer gathered


def test_the_thread_asks_within_its_seconds(app):
    asked = []
    nudges = Nudges(lambda incident, reaction: asked.append(incident), seconds=0.01)
    nudges.add(app, 7, 70)
    deadline = time.monotonic() + 10
    while not asked and time.monotonic() < deadline:
        time.sleep(0.01)
    assert asked == [7]
    nudges.add(app, 7, 71)  # the thread keeps going: a later reaction is asked for again
    while len(asked) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert asked == [7, 7]


def test_an_ask_that_fails_is_logged_and_the_others_are_still_asked(app, caplog):
    asked = []

    def ask(incident, reaction):
        if incident == 1:
            raise ConnectionError("broker down")
        asked.append(incident)

    nudges = Nudges(ask, seconds=3600)
    nudges.add(app, 1, 10)
    nudges.add(app, 2, 20)
    with caplog.at_level(logging.WARNING, logger="crisis.tasks.nudges"):
        nudges.flush()
    assert asked == [2]
    assert "could not ask for the processing of incident 1" in caplog.text


# Python 3.12+ warns about any fork of a threaded process; the child here only reads and exits.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_with_nothing_gathered_and_a_thread_of_its_own(app):
    nudges = Nudges(lambda incident, reaction: None, seconds=3600)
    nudges.add(app, 1, 10)  # gathered in the parent, whose thread is running
    pid = os.fork()
    if pid == 0:  # the child: the parent's work and thread stay with the parent
        os._exit(0 if not nudges._waiting and nudges._thread is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert nudges._waiting  # the parent's are still there to ask for
