"""RoachEnv: Gymnasium contract, registration, determinism and the observation it builds."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import firmware_bridge.sim  # noqa: F401  (registers Roach-v0)
from firmware_bridge.sim.env import RoachEnv
from firmware_bridge.state_builder import StateBuilder
from robot_contract.errors import ConfigError
from robot_contract.state import STATE_DIM


@pytest.mark.filterwarnings("ignore:.*(recommend using a symmetric|infinity).*:UserWarning")
def test_check_env_passes():
    """gymnasium's env checker accepts RoachEnv."""
    check_env(RoachEnv("terrain=turf"), skip_render_check=True)


def test_registered_with_spaces_and_time_limit():
    """Roach-v0 makes a RoachEnv with leg-rate actions 2..9, a 24-state and 110-step episodes."""
    env = gymnasium.make("Roach-v0", condition="payload_g=5")
    assert isinstance(env.unwrapped, RoachEnv)
    assert env.spec is not None and env.spec.max_episode_steps == 110
    assert env.action_space.dtype == np.float32
    np.testing.assert_array_equal(env.action_space.low, [2, 2])
    np.testing.assert_array_equal(env.action_space.high, [9, 9])
    assert env.observation_space.shape == (STATE_DIM,)
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(np.array([6, 6], dtype=np.float32))
        assert not terminated
        steps += 1
    assert steps == 110


def _rollout(env: RoachEnv, seed: int, condition: str | None = None) -> np.ndarray:
    options = {"condition": condition} if condition is not None else None
    obs, _ = env.reset(seed=seed, options=options)
    rng = np.random.default_rng(0)
    out = [obs]
    for _ in range(10):
        obs, *_ = env.step(rng.uniform(2, 9, 2).astype(np.float32))
        out.append(obs)
    return np.array(out)


def test_deterministic_per_seed_and_different_across_seeds():
    """The same seed gives identical observations; another seed gives different ones."""
    env = RoachEnv()
    a, b, c = _rollout(env, 7), _rollout(env, 7), _rollout(env, 8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(_rollout(RoachEnv(), 7), a)


def test_reset_option_sets_the_condition():
    """options={"condition": ...} changes the condition for this and later episodes."""
    env = RoachEnv()
    nominal = _rollout(env, 1)
    ice = _rollout(env, 1, condition="terrain=ice")
    assert str(env.condition) == "terrain=ice"
    np.testing.assert_array_equal(_rollout(env, 1), ice)
    assert not np.array_equal(nominal, ice)
    with pytest.raises(ConfigError):
        env.reset(seed=0, options={"condition": "terrain=lava"})


def test_observation_is_the_state_builder_of_telemetry_and_pose():
    """Each observation equals StateBuilder applied to the telemetry and pose the robot gave."""
    env = RoachEnv()
    records = []
    telemetry, pose = env.robot.telemetry, env.robot.pose
    env.robot.telemetry = lambda: records.append(telemetry()) or records[-1]  # type: ignore[method-assign]
    env.robot.pose = lambda: records.append(pose()) or records[-1]  # type: ignore[method-assign]
    observations = [env.reset(seed=3)[0]]
    for action in ([5, 7], [7, 5], [9, 9]):
        observations.append(env.step(np.array(action, dtype=np.float32))[0])
    builder = StateBuilder()
    for k, obs in enumerate(observations):
        np.testing.assert_array_equal(obs, builder.build(records[2 * k], records[2 * k + 1]))
    assert 2.0 < observations[1][19] < observations[1][20]  # legs spinning up, right faster


def test_reward_is_forward_progress():
    """Driving forward earns positive reward about equal to the distance covered."""
    env = RoachEnv()
    env.reset(seed=0)
    total, info = 0.0, {}
    for _ in range(10):
        _, reward, _, _, info = env.step(np.array([6, 6], dtype=np.float32))
        total += reward
    assert total > 0.3
    assert total == pytest.approx(info["true_pose"].x, abs=0.05)


def test_flipped_robot_ends_the_episode():
    """A robot turned on its back reports flipped and the episode terminates."""
    env = RoachEnv()
    env.reset(seed=0)
    assert not env.robot.flipped
    env.robot.data.qpos[3:7] = (0.0, 1.0, 0.0, 0.0)  # half a turn about x: upside down
    env.robot.data.qpos[2] = 0.05
    _, _, terminated, truncated, _ = env.step(np.array([5, 5], dtype=np.float32))
    assert env.robot.flipped and terminated and not truncated
