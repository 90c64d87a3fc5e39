"""File formats that travel through stores: weights bundles and example files. JSON + safetensors only."""
