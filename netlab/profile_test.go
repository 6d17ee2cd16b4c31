package netlab

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseProfile(t *testing.T) {
	tests := []struct {
		in      string
		want    Profile
		wantErr string // substring of the error; "" for success
	}{
		{in: "", want: Profile{}},
		{in: "none", want: Profile{}},
		{in: "cap=600kbit,loss=2%", want: Profile{Down: 600_000, Up: 600_000, LossDown: 2, LossUp: 2}},
		{in: "cap=600kbit,loss=2%,udp=blocked,up=2mbit",
			want: Profile{Down: 600_000, Up: 2_000_000, LossDown: 2, LossUp: 2, UDPBlocked: true}},
		{in: "up=2mbit,cap=600kbit", want: Profile{Down: 600_000, Up: 2_000_000}}, // order does not matter
		{in: "cap=2mbit", want: Profile{Down: 2_000_000, Up: 2_000_000}},
		{in: "down=1.5mbit", want: Profile{Down: 1_500_000}},
		{in: "down=1Gbit", want: Profile{Down: 1_000_000_000}},
		{in: "udp=blocked", want: Profile{UDPBlocked: true}},
		{in: "udp=open", want: Profile{}},
		{in: "only-tcp=443", want: Profile{OnlyTCPPort: 443}},
		{in: "only-tcp=443+8800", want: Profile{OnlyTCPPort: 443, OnlyTCPAlso: 8800}},
		{in: "loss=10%,loss-up=0%", want: Profile{LossDown: 10}}, // an explicit 0 overrides
		{in: "loss-down=0.5%,loss-up=100%", want: Profile{LossDown: 0.5, LossUp: 100}},
		{in: "cap=1mbit,queue=50ms", want: Profile{Down: 1_000_000, Up: 1_000_000, Queue: 50 * time.Millisecond}},
		{in: " cap=1mbit , loss=1% ", want: Profile{Down: 1_000_000, Up: 1_000_000, LossDown: 1, LossUp: 1}},

		{in: "cap=600", wantErr: "needs a unit"},
		{in: "cap=600kbps", wantErr: "needs a unit"},
		{in: "cap=fastmbit", wantErr: "not a number"},
		{in: "cap=5kbit", wantErr: "out of range"},
		{in: "cap=20gbit", wantErr: "out of range"},
		{in: "cap=-1mbit", wantErr: "out of range"},
		{in: "cap=NaNmbit", wantErr: "not a number"},
		{in: "loss=2", wantErr: "want a percentage such as 2%"},
		{in: "loss=101%", wantErr: "0%..100%"},
		{in: "loss=-1%", wantErr: "0%..100%"},
		{in: "udp=off", wantErr: "want blocked or open"},
		{in: "only-tcp=0", wantErr: "port 1..65535"},
		{in: "only-tcp=70000", wantErr: "port 1..65535"},
		{in: "only-tcp=https", wantErr: "port 1..65535"},
		{in: "only-tcp=443+", wantErr: "port 1..65535"},
		{in: "only-tcp=443+443", wantErr: "port 1..65535"},
		{in: "only-tcp=443+0", wantErr: "port 1..65535"},
		{in: "only-tcp=+443", wantErr: "port 1..65535"},
		{in: "queue=0s", wantErr: "out of range"},
		{in: "queue=1h", wantErr: "out of range"},
		{in: "queue=soon", wantErr: "queue"},
		{in: "cap=1mbit,cap=2mbit", wantErr: "cap given twice"},
		{in: "delay=40ms", wantErr: `unknown key "delay"`},
		{in: "cap", wantErr: "want key=value"},
		{in: "cap=", wantErr: "want key=value"},
		{in: "cap=1mbit,,loss=1%", wantErr: "want key=value"},
	}
	for _, tt := range tests {
		got, err := ParseProfile(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseProfile(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParseProfile(%q) error %q does not quote the input", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseProfile(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseProfile(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("ParseProfile(%q) gave an invalid profile: %v", tt.in, err)
		}
		// The canonical string reads back as the same profile.
		back, err := ParseProfile(got.String())
		if err != nil || back != got {
			t.Errorf("ParseProfile(%q).String() = %q, reads back as %+v, %v", tt.in, got.String(), back, err)
		}
	}
}

func TestProfileString(t *testing.T) {
	tests := []struct {
		p    Profile
		want string
	}{
		{Profile{}, "none"},
		{Profile{Down: 600_000, Up: 600_000, LossDown: 2, LossUp: 2}, "cap=600kbit,loss=2%"},
		{Profile{Down: 600_000, Up: 2_000_000, UDPBlocked: true}, "down=600kbit,up=2mbit,udp=blocked"},
		{Profile{Up: 1_500_000, LossDown: 0.5}, "up=1500kbit,loss-down=0.5%"},
		{Profile{OnlyTCPPort: 443, Queue: time.Second}, "queue=1s,only-tcp=443"},
		{Profile{OnlyTCPPort: 443, OnlyTCPAlso: 8800}, "only-tcp=443+8800"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestProfileValidate(t *testing.T) {
	tests := []struct {
		p       Profile
		wantErr string
	}{
		{Profile{}, ""},
		{Profile{Down: MinRate, Up: MaxRate, LossDown: 100, Queue: time.Millisecond}, ""},
		{Profile{Down: 1}, "down cap"},
		{Profile{Up: MaxRate + 1}, "up cap"},
		{Profile{LossUp: -0.1}, "loss-up"},
		{Profile{LossDown: math.NaN()}, "loss-down"},
		{Profile{Queue: -time.Second}, "queue"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v.Validate() = %v, want error containing %q", tt.p, err, tt.wantErr)
		}
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
	}{
		{"600kbit", 600_000}, {"2mbit", 2_000_000}, {"2MBIT", 2_000_000},
		{"10000bit", 10_000}, {"0.25mbit", 250_000}, {"10gbit", 10_000_000_000},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	if got := Rate(1_234_567).String(); got != "1234567bit" {
		t.Errorf("Rate(1234567).String() = %q", got)
	}
}
