"""Stage 4-5, modeling: build the Keras networks, train them (one device or many), score
them against the naive baselines, run rolling-origin backtests and draw the report plots."""
