"""Report renderers shared by the CLI, the Action and the App (pure functions of a RunReport)."""
