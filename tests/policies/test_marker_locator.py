"""``MarkerLocator``: saved and loaded bit for bit, a soft arg-max that lands on a cell it is sure
of, and every damaged file refused with its name and the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from policies.vla.locator import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    LocatorConfig,
    LocatorError,
    MarkerLocator,
    load_locator,
)


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(1)
    locator = MarkerLocator(LocatorConfig(image_size=(32, 48), channels=8, tasks=("reach-v3",)))
    return locator, locator.save(tmp_path / "locator")


def test_a_saved_locator_loads_back_and_answers_the_same(saved):
    locator, path = saved
    loaded = load_locator(path)
    assert loaded.config == locator.config and not loaded.training
    frame = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.locate(frame), locator.eval().locate(frame))
    with pytest.raises(ValueError, match=r"expects a \(32, 48\) RGB uint8 frame"):
        loaded.locate(frame[:16])


def test_the_answer_is_the_centre_of_a_cell_it_is_sure_of():
    locator = MarkerLocator(LocatorConfig(image_size=(16, 16), channels=4))
    logits = torch.full((1, 64), -50.0)
    logits[0, 3 * 8 + 5] = 50.0  # the cell in row 3, column 5 of the 8x8 grid
    np.testing.assert_allclose(locator.positions(logits)[0].numpy(), [7.0, 11.0], atol=1e-4)
    # a batch of another frame size is refused, not silently folded into more answers
    with pytest.raises(ValueError, match=r"expects 16x16 RGB frames of 'corner2', got a batch of shape "
                                         r"\(1, 3, 32, 32\)"):
        locator(torch.zeros(1, 32, 32, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"expected scores of shape \[B, 64\], got \(1, 256\)"):
        locator.positions(torch.zeros(1, 256))


@pytest.mark.parametrize(("damage", "message"), [
    (lambda p: (p / CONFIG_FILE).unlink(), "locator.json: missing"),
    (lambda p: (p / CONFIG_FILE).write_text("{not json"), "locator.json: not valid JSON"),
    (lambda p: (p / CONFIG_FILE).write_text(json.dumps({"format": "other", "version": 1})),
     "not a rill-marker-locator v1 file"),
    (lambda p: (p / CONFIG_FILE).write_text(json.dumps({"format": "rill-marker-locator", "version": 1,
                                                       "channels": 3})),
     "channels must be an integer within 4..256"),
    (lambda p: (p / CONFIG_FILE).write_text(json.dumps({"format": "rill-marker-locator", "version": 1,
                                                       "lens": "wide"})),
     "unexpected settings"),
    (lambda p: (p / CONFIG_FILE).write_text(json.dumps({"format": "rill-marker-locator", "version": 1,
                                                       "tasks": "reach-v3"})),
     "tasks must be a list of task names"),
    (lambda p: (p / CONFIG_FILE).write_text(json.dumps({"format": "rill-marker-locator", "version": 1,
                                                       "image_size": 96})),
     "image_size must be two even integers"),
    (lambda p: (p / WEIGHTS_FILE).write_bytes((p / WEIGHTS_FILE).read_bytes()[:100]),
     "locator.safetensors: corrupt or truncated"),
])
def test_damaged_files_are_refused_by_name(saved, damage, message):
    _, path = saved
    damage(path)
    with pytest.raises(LocatorError, match=message):
        load_locator(path)


def test_weights_that_do_not_fit_or_are_not_finite_are_refused(saved, tmp_path):
    from safetensors.torch import save_file

    locator, path = saved
    wide = MarkerLocator(LocatorConfig(image_size=(32, 48), channels=16)).save(tmp_path / "wide")
    (path / WEIGHTS_FILE).write_bytes((wide / WEIGHTS_FILE).read_bytes())
    with pytest.raises(LocatorError, match=r"weights do not fit a 8-channel locator .*wrong shapes"):
        load_locator(path)
    state = {k: v.clone() for k, v in locator.state_dict().items()}
    state["net.0.weight"][0, 0, 0, 0] = float("nan")
    save_file(state, str(path / WEIGHTS_FILE))
    with pytest.raises(LocatorError, match="NaN or infinite"):
        load_locator(path)
