"""Model tests: ``base.ModelTester`` is the shared contract test every method gets."""
