"""Stage 6, serving: the model registry (versions, the champion pointer, its audit log,
verified loading) and batch prediction with the champion."""
