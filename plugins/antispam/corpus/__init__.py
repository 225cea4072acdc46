"""The labelled development corpus the text model is trained on (see README.md here)."""
