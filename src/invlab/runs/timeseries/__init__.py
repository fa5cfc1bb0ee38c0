"""The time-series modality: recipe sections, run set-up, encoder export and snapshots,
and the ``forecast`` and ``classify`` protocols (TimeDRL and a supervised baseline).

Data (``data.name``):

- ``ett``: an ETT CSV (``data.root``), 12/4/4-month split (x4 rows for 15-minute files);
- ``csv``: any ``date,...`` CSV, split by ``data.split_ratios`` (70/10/20);
- ``ucr``: a UCR/UEA classification set by name (``data.dataset=GunPoint``; aeon's shipped
  copies load offline, ``data.root`` points at a folder of ``<name>_TRAIN/_TEST`` files) or
  two explicit files (``data.train_file``, ``data.test_file``).

Model selection never looks at the test split. Forecasting: the encoder is snapshotted
before training and after every epoch (``RUN/snapshots/``); for each horizon the
(snapshot, ridge penalty) or (snapshot, head epoch) with the lowest *validation* MSE is
selected, then scored once on test. Classification: the probe's regularisation is chosen
by cross-validation inside the training split; the encoder is the one at the end of the
recipe's fixed pretraining budget.

The methods (TimeDRL, the supervised baseline) and their ``params`` live in
:mod:`invlab.methods`.
"""

from invlab.runs.modality import Modality
from invlab.runs.timeseries.export import (
    EncoderSnapshots,
    export_series_encoder,
    load_series_encoder,
)
from invlab.runs.timeseries.protocols import classify_protocol, forecast_protocol
from invlab.runs.timeseries.recipe import (
    SupervisedTimeSeriesParams,
    TimeDRLParams,
    TimeSeriesAugment,
    TimeSeriesData,
    TimeSeriesModel,
    TimeSeriesMonitor,
    build_encoder,
    is_forecasting,
    load_forecast_data,
    load_labelled_data,
    validate,
)
from invlab.runs.timeseries.setup import setup

__all__ = [
    "MODALITY", "TimeSeriesData", "TimeSeriesModel", "TimeSeriesAugment", "TimeSeriesMonitor", "TimeDRLParams",
    "SupervisedTimeSeriesParams", "EncoderSnapshots", "load_series_encoder", "export_series_encoder",
    "forecast_protocol", "classify_protocol", "setup", "validate", "build_encoder", "is_forecasting",
    "load_forecast_data", "load_labelled_data",
]

MODALITY = Modality(
    name="timeseries", data=TimeSeriesData, model=TimeSeriesModel, augment=TimeSeriesAugment,
    monitor=TimeSeriesMonitor, setup=setup, validate=validate,
    protocols={"forecast": forecast_protocol, "classify": classify_protocol},
)
