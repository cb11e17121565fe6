"""A PyTorch reference of DANet with the official and mmsegmentation parameter names.

This module is the oracle of the converter's tests, of `danet-keras convert
--verify` (which loads a real checkpoint into it strictly and compares it with
the converted Keras model) and of the PyTorch side of the benchmarks. It
needs `torch` (`pip install danet-keras[torch]`); nothing in `danet_keras`
imports it unless asked to.

It is written from the two upstream code bases' behaviour, independently of
the Keras model, so that a mistake in one shows up as a difference: only two
tables of facts are shared (block counts per depth, ImageNet mean/std), and
the tests check the block counts through the official parameter count.

- `layout="official"`: github.com/junfu1115/DANet (`encoding/nn/da_att.py`,
  `encoding/models/sseg/danet.py`, `encoding/models/backbone/resnet.py`).
  The state dict has the keys `pretrained.*` (backbone) and `head.*`
  (`conv5a`, `conv5c`, `sa`, `sc`, `conv51`, `conv52`, `conv6`, `conv7`,
  `conv8`); the attention scales are `head.sa.gamma` / `head.sc.gamma` of
  shape (1,).
- `layout="mmseg"`: mmsegmentation's `EncoderDecoder` with `ResNetV1c` /
  `ResNet`, `DAHead` and `FCNHead` (ConvModules `conv`/`bn`; `Scale`
  parameters `gamma.scale` of shape ()). Keys `backbone.*`, `decode_head.*`,
  `auxiliary_head.*`.

The forward pass takes the ImageNet-normalised NCHW tensor (as both upstream
code bases do) and returns a dict with the Keras model's output names, all
upsampled bilinearly to the input size.
"""

import torch
import torch.nn.functional as F
from torch import nn

from danet_keras.utils.architecture import IMAGENET_MEAN, IMAGENET_STD, RESNET_DEPTHS

LAYOUTS = ("official", "mmseg")


def position_attention(query, key, value):
    """softmax(Q^T K) applied to V, as `PAM_Module.forward` (NCHW tensors).

    Args:
        query, key: (B, C', H, W) projections.
        value: (B, C, H, W) projection.

    Returns:
        (B, C, H, W): each position's attention-weighted sum of the values.
    """
    batch, channels, height, width = value.shape
    energy = torch.bmm(query.flatten(2).permute(0, 2, 1), key.flatten(2))
    attention = torch.softmax(energy, dim=-1)
    out = torch.bmm(value.flatten(2), attention.permute(0, 2, 1))
    return out.view(batch, channels, height, width)


def channel_attention(x):
    """`CAM_Module.forward` without the residual: softmax(max - X X^T) X.

    Args:
        x: (B, C, H, W).

    Returns:
        (B, C, H, W).
    """
    flat = x.flatten(2)
    energy = torch.bmm(flat, flat.permute(0, 2, 1))
    energy = torch.max(energy, -1, keepdim=True)[0].expand_as(energy) - energy
    return torch.bmm(torch.softmax(energy, dim=-1), flat).view_as(x)


class Bottleneck(nn.Module):
    """torchvision bottleneck: stride and dilation on the 3x3 convolution."""

    expansion = 4

    def __init__(self, inplanes, planes, stride, dilation, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class BasicBlock(nn.Module):
    """mmsegmentation's basic block: dilation on the first 3x3 convolution only."""

    expansion = 1

    def __init__(self, inplanes, planes, stride, dilation, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(
            inplanes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def _conv_bn_relu(in_channels, out_channels, stride=1):
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


class ResNet(nn.Module):
    """Dilated ResNet returning the four stages' features.

    Args:
        depth: 18, 34, 50, 101 or 152.
        layout: `"official"` (deep stem as `conv1` Sequential + `bn1`) or
            `"mmseg"` (deep stem as `stem` Sequential).
        stem: `"standard"` (7x7) or `"deep"` (three 3x3 convs, widths w, w, 2w).
        stem_width: w of the deep stem.
        output_stride: 8, 16 or 32.
        multi_grid: None or the last stage's block dilations, cycled.
    """

    def __init__(self, depth, layout, stem, stem_width, output_stride, multi_grid):
        super().__init__()
        block_type, blocks = RESNET_DEPTHS[depth]
        block = Bottleneck if block_type == "bottleneck" else BasicBlock
        if stem == "standard":
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            inplanes = 64
        else:
            modules = (
                _conv_bn_relu(3, stem_width, stride=2)
                + _conv_bn_relu(stem_width, stem_width)
                + _conv_bn_relu(stem_width, 2 * stem_width)
            )
            if layout == "official":
                # The official code keeps the last BN and ReLU outside.
                self.conv1 = nn.Sequential(*modules[:7])
                self.bn1 = nn.BatchNorm2d(2 * stem_width)
                self.relu = nn.ReLU()
            else:
                self.stem = nn.Sequential(*modules)
            inplanes = 2 * stem_width
        self.deep_stem_in_sequential = stem == "deep" and layout == "mmseg"
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)

        # (stride, dilation) of each stage; a dilated stage's first block uses
        # half its dilation (official `_make_layer`, mmseg `contract_dilation`).
        if output_stride == 8:
            stages = ((1, 1), (2, 1), (1, 2), (1, 4))
        elif output_stride == 16:
            stages = ((1, 1), (2, 1), (2, 1), (1, 2))
        else:
            stages = ((1, 1), (2, 1), (2, 1), (2, 1))
        for index, ((stride, dilation), count) in enumerate(zip(stages, blocks)):
            planes = 64 * 2**index
            if index == 3 and multi_grid:
                dilations = [multi_grid[i % len(multi_grid)] for i in range(count)]
            else:
                dilations = [max(1, dilation // 2)] + [dilation] * (count - 1)
            downsample = None
            if stride != 1 or inplanes != planes * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes * block.expansion),
                )
            layers = [block(inplanes, planes, stride, dilations[0], downsample)]
            inplanes = planes * block.expansion
            layers += [block(inplanes, planes, 1, d, None) for d in dilations[1:]]
            self.add_module(f"layer{index + 1}", nn.Sequential(*layers))
        self.out_channels = inplanes

    def forward(self, x):
        if self.deep_stem_in_sequential:
            x = self.stem(x)
        else:
            x = self.relu(self.bn1(self.conv1(x)))
        x = self.maxpool(x)
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return c1, c2, c3, self.layer4(c3)


class PAMModule(nn.Module):
    """Official `PAM_Module`: `query_conv`, `key_conv`, `value_conv`, `gamma` (1,)."""

    def __init__(self, channels, reduction):
        super().__init__()
        self.query_conv = nn.Conv2d(channels, channels // reduction, 1)
        self.key_conv = nn.Conv2d(channels, channels // reduction, 1)
        self.value_conv = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        out = position_attention(self.query_conv(x), self.key_conv(x), self.value_conv(x))
        return self.gamma * out + x


class CAMModule(nn.Module):
    """Official `CAM_Module`: only `gamma` (1,)."""

    def __init__(self):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.gamma * channel_attention(x) + x


class OfficialHead(nn.Module):
    """Official `DANetHead` (`conv5a` ... `conv8`); returns (fused, position, channel)."""

    def __init__(self, in_channels, channels, num_classes, reduction):
        super().__init__()
        self.conv5a = nn.Sequential(*_conv_bn_relu(in_channels, channels))
        self.conv5c = nn.Sequential(*_conv_bn_relu(in_channels, channels))
        self.sa = PAMModule(channels, reduction)
        self.sc = CAMModule()
        self.conv51 = nn.Sequential(*_conv_bn_relu(channels, channels))
        self.conv52 = nn.Sequential(*_conv_bn_relu(channels, channels))
        for name in ("conv6", "conv7", "conv8"):
            classifier = nn.Sequential(nn.Dropout2d(0.1), nn.Conv2d(channels, num_classes, 1))
            self.add_module(name, classifier)

    def forward(self, x):
        position = self.conv51(self.sa(self.conv5a(x)))
        channel = self.conv52(self.sc(self.conv5c(x)))
        return self.conv8(position + channel), self.conv6(position), self.conv7(channel)


class ConvModule(nn.Module):
    """mmcv `ConvModule` with BN and ReLU: `conv` (no bias) and `bn`."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activate = nn.ReLU()

    def forward(self, x):
        return self.activate(self.bn(self.conv(x)))


class Scale(nn.Module):
    """mmcv `Scale`: one learnable scalar `scale` of shape ()."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(0.0))

    def forward(self, x):
        return x * self.scale


class MMSegPAM(nn.Module):
    """mmsegmentation `PAM` (a `SelfAttentionBlock`): `*_project` convs, `gamma.scale`."""

    def __init__(self, channels, reduction):
        super().__init__()
        self.key_project = nn.Conv2d(channels, channels // reduction, 1)
        self.query_project = nn.Conv2d(channels, channels // reduction, 1)
        self.value_project = nn.Conv2d(channels, channels, 1)
        self.gamma = Scale()

    def forward(self, x):
        out = position_attention(self.query_project(x), self.key_project(x), self.value_project(x))
        return self.gamma(out) + x


class MMSegCAM(nn.Module):
    """mmsegmentation `CAM`: `gamma.scale`."""

    def __init__(self):
        super().__init__()
        self.gamma = Scale()

    def forward(self, x):
        return self.gamma(channel_attention(x)) + x


class DAHead(nn.Module):
    """mmsegmentation `DAHead`; returns (fused, position, channel) logits."""

    def __init__(self, in_channels, channels, num_classes, reduction):
        super().__init__()
        self.pam_in_conv = ConvModule(in_channels, channels)
        self.pam = MMSegPAM(channels, reduction)
        self.pam_out_conv = ConvModule(channels, channels)
        self.pam_conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.cam_in_conv = ConvModule(in_channels, channels)
        self.cam = MMSegCAM()
        self.cam_out_conv = ConvModule(channels, channels)
        self.cam_conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.dropout = nn.Dropout2d(0.1)

    def forward(self, x):
        position = self.pam_out_conv(self.pam(self.pam_in_conv(x)))
        channel = self.cam_out_conv(self.cam(self.cam_in_conv(x)))
        return (
            self.conv_seg(self.dropout(position + channel)),
            self.pam_conv_seg(self.dropout(position)),
            self.cam_conv_seg(self.dropout(channel)),
        )


class FCNHead(nn.Module):
    """mmsegmentation `FCNHead` with one conv and no input concatenation."""

    def __init__(self, in_channels, channels, num_classes):
        super().__init__()
        self.convs = nn.Sequential(ConvModule(in_channels, channels))
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.dropout = nn.Dropout2d(0.1)

    def forward(self, x):
        return self.conv_seg(self.dropout(self.convs(x)))


class DANetReference(nn.Module):
    """DANet in PyTorch with the official or the mmsegmentation state-dict layout.

    The keyword arguments are those of `danet_keras.DANet` that describe
    weights or structure, so `DANetReference(layout, **config)` builds the
    counterpart of `DANet(**config)`.

    Args:
        layout: `"official"` or `"mmseg"`.
        num_classes: classes of the three (four with `aux_head`) classifiers.
        backbone: `"resnet18"` ... `"resnet152"`.
        output_stride: 8, 16 or 32.
        multi_grid: None or the last stage's dilations (official: (4, 8, 16)).
        stem: `"standard"` or `"deep"`.
        stem_width: w of the deep stem; default 64 (official) / 32 (mmseg).
        aux_head: mmsegmentation's FCN auxiliary head on stage 3.
        align_corners: the upsampling convention of all outputs.
        head_channels: channels of the attention branches (default C/4).
        attention_reduction: the position attention's query/key reduction.
        aux_channels: channels of the auxiliary head.
        **ignored: other `DANet` arguments (e.g. `dropout`, `sync_batchnorm`),
            which change no inference result in eval mode.

    Call arguments:
        x: ImageNet-normalised RGB images, (B, 3, H, W) float32.

    Returns:
        A dict of (B, num_classes, H, W) logits: `"logits"`,
        `"position_logits"`, `"channel_logits"` and, with `aux_head`,
        `"aux_logits"`.
    """

    def __init__(
        self,
        layout,
        num_classes,
        backbone="resnet50",
        output_stride=8,
        multi_grid=None,
        stem="standard",
        stem_width=None,
        aux_head=False,
        align_corners=False,
        head_channels=None,
        attention_reduction=8,
        aux_channels=256,
        **ignored,
    ):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"`layout` must be one of {LAYOUTS}, got {layout!r}.")
        if aux_head and layout == "official":
            raise ValueError("The official DANet has no auxiliary head; use layout='mmseg'.")
        if stem_width is None:
            stem_width = 64 if layout == "official" else 32
        self.layout = layout
        self.align_corners = bool(align_corners)
        resnet = ResNet(
            int(backbone[len("resnet") :]), layout, stem, stem_width, output_stride, multi_grid
        )
        in_channels = resnet.out_channels
        channels = in_channels // 4 if head_channels is None else head_channels
        if layout == "official":
            self.pretrained = resnet
            self.head = OfficialHead(in_channels, channels, num_classes, attention_reduction)
        else:
            self.backbone = resnet
            self.decode_head = DAHead(in_channels, channels, num_classes, attention_reduction)
            if aux_head:
                self.auxiliary_head = FCNHead(in_channels // 2, aux_channels, num_classes)

    def forward(self, x):
        size = x.shape[2:]
        if self.layout == "official":
            _, _, c3, c4 = self.pretrained(x)
            fused, position, channel = self.head(c4)
        else:
            _, _, c3, c4 = self.backbone(x)
            fused, position, channel = self.decode_head(c4)
        logits = {"logits": fused, "position_logits": position, "channel_logits": channel}
        if hasattr(self, "auxiliary_head"):
            logits["aux_logits"] = self.auxiliary_head(c3)
        return {
            name: F.interpolate(value, size=size, mode="bilinear", align_corners=self.align_corners)
            for name, value in logits.items()
        }


def normalize_images(images):
    """[0, 255] RGB NHWC images (numpy or tensor) -> the normalised NCHW float32 tensor.

    Args:
        images: (B, H, W, 3) RGB pixel values in [0, 255].

    Returns:
        (B, 3, H, W) float32 tensor, `(x / 255 - mean) / std` with the
        ImageNet statistics.
    """
    x = torch.as_tensor(images, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def randomize_like_trained(model, calibration_images, gamma_range=(0.5, 1.0), seed=0):
    """Gives a freshly built reference the statistics of a trained model.

    Random BatchNorm affine parameters, attention scales drawn from
    `gamma_range` (a fresh model has zeros there, which would hide the
    attention from any comparison), and BatchNorm running statistics measured
    on `calibration_images` (the exact mean and variance over all of them, as
    running statistics converge to after training). Leaves the model in eval
    mode.

    Args:
        model: a `DANetReference`.
        calibration_images: iterable of (B, H, W, 3) [0, 255] RGB batches.
        gamma_range: (low, high) of the uniformly drawn attention scales.
        seed: seed of the random draws.

    Returns:
        The model.
    """
    generator = torch.Generator().manual_seed(seed)

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=generator)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.copy_(uniform(module.weight.shape, 0.5, 1.5))
                module.bias.copy_(uniform(module.bias.shape, -0.2, 0.2))
                module.reset_running_stats()
                # momentum None: a cumulative average over all batches.
                module.momentum = None
            elif isinstance(module, (PAMModule, CAMModule)):
                module.gamma.copy_(uniform((1,), *gamma_range))
            elif isinstance(module, Scale):
                module.scale.copy_(uniform((), *gamma_range))
        model.train()
        for images in calibration_images:
            model(normalize_images(images))
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = 0.1
    return model.eval()
