"""EngineForge: recipes in, validated and packaged serving containers out."""

__version__ = "0.1.0"
