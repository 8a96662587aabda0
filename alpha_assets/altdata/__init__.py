"""Alternative-data assets: satellite imagery (cars, oil tanks), call and filing NLP, web scraping, and the
point-in-time join of them all onto trading days (``features.alt_features``)."""
