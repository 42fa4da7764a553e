"""Output renderers: they format decisions already made by the core and decide nothing."""
