"""Fixtures shared by the engine tests: a simulated network with spammers of every rule, and
the engines' default configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.config import load_settings
from streams.core.engine import EngineConfig
from streams.simulate import Simulation, simulate


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate(1200, 2, seed=5)


@pytest.fixture(scope="module")
def config() -> EngineConfig:
    return load_settings(env={}, cwd=Path("/")).engine_config()
