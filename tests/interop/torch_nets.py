"""PyTorch modules with the parameter names of igrc's graph files, shared by
the interop tests (test_torch_interop.py, test_onnx_import.py)."""
import torch.nn as nn
import torch.nn.functional as F


class SmallCNN(nn.Module):
    """models/nets/smallcnn.json in PyTorch: the same parameter names; act is
    the activation ("act" param of the graph file), ReLU by default; w1, w2
    and hidden are the graph file's width1, width2 and hidden settings."""

    def __init__(self, act=F.relu, w1=32, w2=64, hidden=200):
        super().__init__()
        self.act = act
        self.conv1 = nn.Conv2d(1, w1, 3)
        self.conv2 = nn.Conv2d(w1, w1, 3)
        self.conv3 = nn.Conv2d(w1, w2, 3)
        self.conv4 = nn.Conv2d(w2, w2, 3)
        self.fc1 = nn.Linear(16 * w2, hidden)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, 10)

    def forward(self, x):
        a = self.act
        x = F.max_pool2d(a(self.conv2(a(self.conv1(x)))), 2)
        x = F.max_pool2d(a(self.conv4(a(self.conv3(x)))), 2)
        x = self.drop(a(self.fc1(x.flatten(1))))
        return self.fc3(a(self.fc2(x)))
