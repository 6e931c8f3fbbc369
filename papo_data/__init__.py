"""papo_data: planning-aware policy optimisation data toolkit (PAPO-VLA)."""

from papo_data.data.dataset import Dataset, open_dataset
from papo_data.data.writer import DatasetWriter, Episode

__all__ = ["Dataset", "DatasetWriter", "Episode", "open_dataset"]
__version__ = "0.1.0"
