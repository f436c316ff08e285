"""Stage 3, windows: cut the validated table into training-ready windows on a regular grid,
with time or series splits, scalers fit on training data and calendar covariates, stored as
a content-addressed Parquet window store that `input_pipeline` streams into tf.data."""
