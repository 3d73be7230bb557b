"""Training: FP32 training of the EFM (``trainer``, the teacher of QDR) and QDR's QAT loop (``qat``)."""
