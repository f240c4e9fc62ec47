"""Every size limit on user input, in one place (the README quotes them)."""

# Images: a 50-megapixel phone photo passes; a decompression bomb (say 30,000 x 30,000 pixels)
# is refused before a single pixel is decoded. 64 MP of RGB is 192 MB of memory.
MAX_IMAGE_PIXELS = 64_000_000

# Dataset zips: checked from the zip's directory before anything is extracted.
MAX_ZIP_ENTRIES = 50_000
MAX_ZIP_TOTAL_BYTES = 2 * 1024**3  # uncompressed
MAX_ZIP_COMPRESSION_RATIO = 200  # per entry; images barely compress, bombs compress ~1000x
MAX_FOLDER_DEPTH = 12  # nesting below the dataset root

# Datasets: class folders. More than this is almost always a wrong folder picked.
MAX_CLASSES = 20

# Uploads to the web app, checked before any decoding. A phone photo is under 20 MB; the dataset
# limit is also the server's hard cap on any single upload.
MAX_IMAGE_UPLOAD_BYTES = 20 * 1024**2
MAX_DATASET_UPLOAD_BYTES = 500 * 1024**2
