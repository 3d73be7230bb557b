"""FP32 training of the EFM (the teacher of QDR)."""
