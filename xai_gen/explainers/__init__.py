"""The bundled explainers; importing this package registers them."""
