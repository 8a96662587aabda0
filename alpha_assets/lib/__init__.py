"""Pure computation of the platform: numpy/polars in, numpy/polars out; never imports dagster."""
