"""Reading exams: per-plane arrays, zips, DICOM, NIfTI, uploads; every limit checked before decoding."""
