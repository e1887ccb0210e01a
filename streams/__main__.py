"""``python -m streams`` is the ``air-exstream`` command."""

from streams.cli import main

main()
