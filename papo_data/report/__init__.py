"""The HTML report of a dataset (and of a training run): `papo report`."""

from papo_data.report.build import Report, build_report, write_report

__all__ = ["Report", "build_report", "write_report"]
