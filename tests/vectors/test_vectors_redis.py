"""The shared test vectors (*.vec) against the Redis scripts.

vectors_c runs the same files against the C core, so a scenario passing
here and there means a gateway backed by Redis decides like a standalone
one.  Each scenario runs twice, in two storage clusters of one Redis, to
catch a script that leaves state outside its cluster's keys.
"""

import pytest

from vecfile import Runner, load_all

SCENARIOS = load_all()


def test_there_are_enough_vectors():
    assert len(SCENARIOS) >= 25


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_vector(scenario, new_cluster):
    for _ in range(2):
        Runner(new_cluster("vec")).run(scenario)
