"""Where a model comes from and how it is loaded: Hub resolution, default models, load settings.

Sits below ``modules/``: it knows nothing of modules or models, and imports neither torch nor transformers.
"""
