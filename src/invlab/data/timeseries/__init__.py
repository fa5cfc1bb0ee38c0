"""Time-series data: forecasting CSVs (splits, train-only scaler, sliding windows) and
labelled UCR/UEA series (aeon's shipped sets or local .ts/.arff/.tsv/.txt files)."""

from invlab.data.timeseries.classification import (
    LabelledSeries,
    aeon_dataset_names,
    equalise_lengths,
    load_classification_pair,
    load_classification_split,
    read_labelled_file,
)
from invlab.data.timeseries.forecasting import (
    SPLITS,
    ForecastSeries,
    ett_borders,
    load_forecast_series,
    ratio_borders,
    read_series_csv,
    window_count,
    window_starts,
)
from invlab.data.timeseries.windows import (
    LabelledDataset,
    TimeSeriesDataModule,
    WindowDataset,
    series_loader,
)

__all__ = [
    "LabelledSeries", "aeon_dataset_names", "equalise_lengths", "load_classification_pair",
    "load_classification_split", "read_labelled_file",
    "SPLITS", "ForecastSeries", "ett_borders", "load_forecast_series", "ratio_borders", "read_series_csv",
    "window_count", "window_starts",
    "LabelledDataset", "TimeSeriesDataModule", "WindowDataset", "series_loader",
]
