"""PyTorch peer for bench/cpu_train_step.sh: the same SmallCNN and objectives
as models/nets/smallcnn.json and models/objectives/{standard,at,trades,
trades_igr}.json (PGD 40 steps eps 0.3 alpha 0.01; TRADES beta 1; IGR: 10-point
IG with the zero baseline in training mode, lambda 1), Adam, batch 128, random
MNIST-shaped data. Prints images/s and the peak resident set in bytes."""
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 32, 3)
        self.c3, self.c4 = nn.Conv2d(32, 64, 3), nn.Conv2d(64, 64, 3)
        self.f1, self.f2, self.f3 = nn.Linear(1024, 200), nn.Linear(200, 200), nn.Linear(200, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        x = F.max_pool2d(F.relu(self.c4(F.relu(self.c3(x)))), 2).flatten(1)
        x = F.dropout(F.relu(self.f1(x)), 0.5, self.training)
        return self.f3(F.relu(self.f2(x)))


def pgd(net, x, y, loss_fn, start):
    was = net.training
    net.eval()
    xa = (x + start).clamp(0, 1).detach()
    for _ in range(40):
        xa.requires_grad_(True)
        g, = torch.autograd.grad(loss_fn(net(xa)), xa)
        xa = torch.min(torch.max(xa.detach() + 0.01 * g.sign(), x - 0.3), x + 0.3).clamp(0, 1)
    net.train(was)
    return xa.detach()


def ig(net, x, y, m=10):
    alphas = (torch.arange(1, m + 1, dtype=x.dtype) / m).view(m, 1, 1, 1, 1)
    path = (alphas * x.unsqueeze(0)).reshape(-1, *x.shape[1:])
    if not path.requires_grad:
        path.requires_grad_(True)
    z = net(path).view(m, x.shape[0], -1)
    logit = z.gather(2, y.view(1, -1, 1).expand(m, -1, 1)).sum()
    g, = torch.autograd.grad(logit, path, create_graph=True)
    return x * g.view(m, *x.shape).mean(0)


def loss_of(kind, net, x, y):
    if kind == "standard":
        return F.cross_entropy(net(x), y)
    if kind == "at":
        xa = pgd(net, x, y, lambda z: F.cross_entropy(z, y, reduction="sum"),
                 torch.empty_like(x).uniform_(-0.3, 0.3))
        return F.cross_entropy(net(xa), y)
    with torch.no_grad():
        net.eval()
        p_nat = F.softmax(net(x), 1)
        net.train()
    kl = lambda z: F.kl_div(F.log_softmax(z, 1), p_nat, reduction="sum")
    xa = pgd(net, x, y, kl, 0.001 * torch.randn_like(x))
    z, za = net(x), net(xa)
    loss = F.cross_entropy(z, y) + F.kl_div(F.log_softmax(za, 1), F.softmax(z, 1), reduction="batchmean")
    if kind == "trades_igr":
        xr = x.clone().requires_grad_(True)
        a, b = ig(net, xr, y), ig(net, xa.requires_grad_(True), y)
        loss = loss + (1 - F.cosine_similarity(a.flatten(1), b.flatten(1), eps=1e-8)).mean()
    return loss


def main():
    kind, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = SmallCNN()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(128, 1, 28, 28)
    y = torch.randint(0, 10, (128,))
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            t0 = time.perf_counter()
        opt.zero_grad()
        loss_of(kind, net, x, y).backward()
        opt.step()
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"{kind} {steps * 128 / dt:.1f} {peak}")


if __name__ == "__main__":
    main()
