"""Images and their processing jobs."""
