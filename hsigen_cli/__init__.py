"""The ``hsigen`` command line: thin Typer commands that map options to stage configs."""
