"""Rounding modes: an explicit field of every rounding op in the IR, an integer argument of
every rounding kernel."""

ROUND_HALF_EVEN = 0  # ties to the even neighbour (torch.round, np.round, Brevitas, QONNX ROUND)
ROUND_HALF_UP = 1    # ties toward +infinity ("add half then floor", FINN thresholds)
ROUND_HALF_AWAY = 2  # ties away from zero (C round(), gemmlowp's rounding half)
ROUND_FLOOR = 3      # toward -infinity (arithmetic shift right, QONNX Trunc FLOOR)

ROUNDING_NAMES = {
    "half_even": ROUND_HALF_EVEN,
    "half_up": ROUND_HALF_UP,
    "half_away": ROUND_HALF_AWAY,
    "floor": ROUND_FLOOR,
}
