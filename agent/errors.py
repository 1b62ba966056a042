"""The exceptions the CLI reports as a one-line error rather than a traceback."""

from __future__ import annotations

from gymnasium.error import DependencyNotInstalled

from agent.actor.steps import NonFiniteResetError
from agent.demos.episodes import DemoSetError
from agent.outputs import OutputExistsError
from agent.pretrain.config import PretrainStateError
from agent.train_config import RunDirectoryError
from hal.errors import ConfigError, HalError
from learners.cache.errors import CacheError
from learners.checkpoint import CheckpointError
from learners.link.security import EndpointError, InsecureEndpointError, KeyFileError, KeysExistError
from policies.reward.checkpoint import RewardModelError
from policies.vla.errors import VLACheckpointError
from policies.vla.locator import LocatorError
from sim.envs import UnknownEnvError

USER_ERRORS: tuple[type[BaseException], ...] = (
    CacheError,
    CheckpointError,
    DemoSetError,
    DependencyNotInstalled,  # e.g. pygame, for rill eval --video of a classic-control env
    HalError,
    ConfigError,
    EndpointError,
    InsecureEndpointError,
    KeyFileError,
    KeysExistError,
    LocatorError,
    NonFiniteResetError,
    OutputExistsError,
    PretrainStateError,
    RewardModelError,
    RunDirectoryError,
    UnknownEnvError,
    VLACheckpointError,
    FileNotFoundError,
    IsADirectoryError,  # (these OSErrors name the path)
    NotADirectoryError,
    PermissionError,
)
