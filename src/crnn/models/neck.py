"""PaddleOCR's ``SequenceEncoder``: (B, C, 1, T) feature map -> (B, T, D) sequence."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class EncoderWithRNN(nn.Module):
    """2-layer bidirectional LSTM; (B, T, C) -> (B, T, 2 * hidden)."""

    def __init__(self, in_channels: int, hidden_size: int):
        super().__init__()
        self.lstm = nn.LSTM(in_channels, hidden_size, num_layers=2, bidirectional=True, batch_first=True)
        self.out_channels = 2 * hidden_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lstm(x)[0]


class EncoderWithFC(nn.Module):
    """One Linear per step; (B, T, C) -> (B, T, hidden)."""

    def __init__(self, in_channels: int, hidden_size: int):
        super().__init__()
        self.fc = nn.Linear(in_channels, hidden_size)
        self.out_channels = hidden_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class SequenceEncoder(nn.Module):
    """Im2Seq, then the encoder chosen by ``encoder_type`` ("rnn", "fc" or "reshape")."""

    def __init__(self, in_channels: int, encoder_type: Literal["rnn", "reshape", "fc"] = "rnn", hidden_size: int = 48):
        super().__init__()
        self.encoder: nn.Module | None
        if encoder_type == "rnn":
            self.encoder = EncoderWithRNN(in_channels, hidden_size)
        elif encoder_type == "fc":
            self.encoder = EncoderWithFC(in_channels, hidden_size)
        elif encoder_type == "reshape":
            self.encoder = None
        else:
            raise ValueError(f"unknown encoder_type {encoder_type!r} (rnn, fc, reshape)")
        self.out_channels: int = in_channels if self.encoder is None else int(self.encoder.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] != 1:
            raise ValueError(f"the backbone must end at height 1, got feature map {tuple(x.shape)}")
        x = x.squeeze(2).transpose(1, 2)  # (B, C, 1, T) -> (B, T, C)
        return x if self.encoder is None else self.encoder(x)
