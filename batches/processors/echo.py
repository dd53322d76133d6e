"""The echo processor: answers without a network, for tests, benchmarks and trying things."""

import time

from batches.processors.base import FORM_OPTIONS, Processor

MAX_DELAY = 10.0


class EchoProcessor(Processor):
    """Answers without a network: the question and the turn number. ``delay``
    (seconds, at most 10) simulates a slow model in tests and benchmarks."""

    name = "echo"
    accepts = {**FORM_OPTIONS, "delay": "seconds per item, a number, at most 10 (default 0)"}

    def __init__(self, options: dict):
        super().__init__(options)
        delay = options.get("delay", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise ValueError("The echo processor's delay must be a number of seconds.")
        self.delay = min(float(delay), MAX_DELAY)

    def process(self, input: dict, history: list[dict]) -> dict:
        if self.delay:
            time.sleep(self.delay)
        turn = len(history) + 1
        return {"text": f"echo: {input.get('question', '')} (turn {turn})", "turn": turn}
