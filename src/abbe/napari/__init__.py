"""napari plugin (npe2 manifest ``napari.yaml``): readers, writers, widgets and sample data.

Install with ``pip install "abbe[napari]"``. Nothing here is imported by ``import abbe`` or the
command line; napari imports the modules named in the manifest when it needs them.
"""
