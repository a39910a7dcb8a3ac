"""Models of the measuring app, one module per area: offline evaluation and online experiments."""

from experiments.models.ab import *  # noqa: F403
from experiments.models.evaluation import *  # noqa: F403
from experiments.models.playground import *  # noqa: F403
from experiments.models.provider import *  # noqa: F403
from experiments.models.samples import *  # noqa: F403
