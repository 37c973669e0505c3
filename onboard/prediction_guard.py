"""The per-tick bound on the model's predictions: a model that predicts the impossible
does not plan.

Each tick, before planning, the change the model predicts over the next period (from the
current state under the command in flight) is held against what the robot can physically
do (onboard.plausibility ``PlausibilityConfig.max_predicted_*``). If the adapted
parameters predict the impossible, the tick plans with the meta-learned ones instead
(event ``implausible_prediction``); if those do too, the tick commands a stop (event
``implausible_model``). The same bound is applied at load to the model's predictions on
its recorded probe states (onboard.model), so a model that is absurd everywhere is
refused before the robot moves.
"""

from __future__ import annotations

import numpy as np

from onboard.model import LoadedModel
from onboard.plausibility import Envelope
from robot_contract.state import MODEL_INPUT_STATE_SLICE


class PredictionGuard:
    """Checks one predicted step; allocation-free per call apart from the forward's scratch.

    Args:
        model: the loaded model (normalisation and meta-learned parameters).
        envelope: holds the physical bounds (``Envelope.prediction_fault``).
        period_s: the control period the prediction spans.
    """

    def __init__(self, model: LoadedModel, envelope: Envelope, period_s: float) -> None:
        self.model, self.envelope, self.period_s = model, envelope, period_s
        self._x = np.empty((1, int(model.dims[0])), np.float64)
        self._d_mean = model.delta_mean.astype(np.float64)
        self._d_std = model.delta_std.astype(np.float64)

    def fault(self, state: np.ndarray, action: np.ndarray, params: np.ndarray) -> str:
        """Why the step predicted from ``state`` [24] under ``action`` [2] with ``params``
        [P] is impossible, or "" if it is plausible."""
        self._x[0, :-2] = state[MODEL_INPUT_STATE_SLICE]
        self._x[0, -2:] = action
        with np.errstate(over="ignore", invalid="ignore"):
            dn = self.model.predict_delta_norm(self._x, params)[0].astype(np.float64)
            delta = dn * self._d_std + self._d_mean
        if not bool(np.isfinite(delta).all()):
            return "non-finite prediction"
        return self.envelope.prediction_fault(state, delta, self.period_s)
