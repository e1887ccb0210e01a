"""Template sync: Exstream's Design API -> ``exstream.templates.v1``.

:mod:`.mapping` decides (pure) what each communication version of the Design API means for
routing; :mod:`.sync` reads the Design API through :mod:`streams.exstream` and publishes the
changes; :mod:`.cli` is ``air-exstream templates sync``.
"""
