"""The ``invlab`` command line."""
