// Runs the EA's pure includes (rewritten to C++ by tests/mql5/rewrite.py) so tests/test_mql5.py can hold their
// results against the bridge's own protocol code and against Python's time-zone database.
//
//   harness frames   one EA -> bridge message of each type, one per line, as the EA sends it (UTF-8)
//   harness parse    reads bridge -> EA frames, one per line, and prints what the EA's parsers made of each
//   harness prague   reads UTC seconds, prints Prague midnight (UTC), the day key and the offset
//   harness math     reads "name args...", prints the EA's trade arithmetic for them
#include <MT5Bridge/Messages.mqh>
#include <MT5Bridge/PragueClock.mqh>
#include <MT5Bridge/TradeMath.mqh>
#include <MT5Bridge/DealResend.mqh>

#include <sstream>

static string Text(const char *utf8)
  {
   string s;
   s.chars=Utf16(utf8);
   return s;
  }

static void Emit(const string &frame)
  {
   std::cout<<Utf8(frame.chars)<<"\n";
  }

static int Frames()
  {
   CJsonWriter w;
   // free text with every character the writer must escape, and some that go out as UTF-8
   string tricky=Text("quote \" backslash \\ newline \n tab \t bell \x07 Z\xC3\xBCrich \xE2\x82\xAC \xF0\x9F\x93\x88");

   SHelloInfo h;
   h.ea_version=Text("1.0.0");
   h.login=1510234567;
   h.server=Text("FTMO-Demo");
   h.company=tricky;
   h.currency=Text("USD");
   h.margin_mode=MT5B_MARGIN_MODE_HEDGING;
   h.initial_balance=0;   // unknown: null
   h.first_deposit=0;     // unknown: null
   h.day_start_known=false;
   h.day_start_balance=0;
   h.balance=101250.5;
   h.equity=101180.25;
   h.symbol=Text("EURUSD");
   h.digits=5;
   h.point=0.00001;
   h.tick_size=0.00001;
   h.tick_value=1.0;
   h.contract_size=100000;
   h.volume_min=0.01;
   h.volume_step=0.01;
   h.volume_max=100;
   h.stops_level=0;
   h.freeze_level=0;
   h.filling_modes=3;
   h.trade_mode=MT5B_TRADE_MODE_FULL;
   h.server_utc_offset_s=10800;
   h.margin_per_lot=1085.19;
   h.magic=20261121;
   h.chart_id=133476532849512345;
   h.time_msc=1783416645123;
   Emit(BuildHello(w,0,h));
   h.initial_balance=100000;
   h.first_deposit=100000;
   h.day_start_known=true;
   h.day_start_balance=101250.5;
   Emit(BuildHello(w,1,h));

   MqlArray<MqlRates> rates;
   ArrayResize(rates,3);
   double closes[3]={1.08502,1.08511,1.08509};
   for(int i=0; i<3; i++)
     {
      rates[i].time=1783416480+60*i;
      rates[i].open=1.08495+0.00007*i;
      rates[i].close=closes[i];
      rates[i].high=rates[i].open>closes[i] ? rates[i].open+0.0001 : closes[i]+0.0001;
      rates[i].low=(rates[i].open<closes[i] ? rates[i].open : closes[i])-0.0001;
      rates[i].tick_volume=38+i;
      rates[i].spread=7;
      rates[i].real_volume=0;
     }
   Emit(BuildWarmup(w,2,MT5B_TF_M1,0,1,rates,0,3,5));

   STickInfo t;
   t.time_msc=1783416645391;
   t.bid=1.08512;
   t.ask=1.08519;
   t.volume=0;
   t.balance=101250.5;
   t.equity=101345.6;
   t.margin=1085.19;
   t.free_margin=100260.41;
   t.round_trip_us=412;
   t.digits=5;
   MqlArray<SPositionInfo> positions;
   ArrayResize(positions,2);
   positions[0].ticket=123456789;
   positions[0].symbol=Text("EURUSD");
   positions[0].side=MT5B_SIDE_BUY;
   positions[0].volume=1.0;
   positions[0].open_price=1.08405;
   positions[0].sl=1.08205;
   positions[0].tp=1.08905;
   positions[0].profit=107.0;
   positions[0].swap=-6.9;
   positions[0].commission=-5.0;
   positions[0].magic=20261121;
   positions[0].open_time_msc=1783410000000;
   positions[0].comment=Text("mt5b:16");
   positions[0].digits=5;
   positions[1]=positions[0];
   positions[1].ticket=123456790;
   positions[1].symbol=Text("XAUUSD");
   positions[1].side=MT5B_SIDE_SELL;
   positions[1].volume=0.07;
   positions[1].open_price=2345.67;
   positions[1].sl=0;
   positions[1].tp=0;
   positions[1].magic=0;
   positions[1].comment=Text("a hand-made trade with a comment far longer than thirty-one characters");
   positions[1].digits=2;
   Emit(BuildTick(w,3,t,positions,2));

   SResultInfo r;
   r.command_id=17;
   r.outcome=OutcomeOf(10009);
   r.retcode=10009;
   r.ticket=123456790;
   r.price=1.08519;
   r.volume=0.5;
   r.sl=1.08319;
   r.tp=1.08919;
   r.text=tricky;
   r.time_msc=1783416645412;
   r.digits=5;
   Emit(BuildResult(w,4,r));

   SDealInfo d;
   d.deal=98765432;
   d.order=123456790;
   d.position_id=123456790;
   d.symbol=Text("EURUSD");
   d.side=MT5B_SIDE_BUY;
   d.entry=MT5B_ENTRY_IN;
   d.reason=MT5B_DEAL_REASON_EXPERT;
   d.volume=0.5;
   d.price=1.08519;
   d.profit=0;
   d.swap=0;
   d.commission=-2.5;
   d.magic=20261121;
   d.time_msc=1783416645409;
   d.comment=Text("");
   d.digits=5;
   Emit(BuildDeal(w,5,d));

   SFailsafeInfo f;
   f.kind=MT5B_FAILSAFE_EQUITY_GUARD;
   f.time_msc=1783416700000;
   f.detail=Text("equity 94990.00 below floor 95000.00: closed 2 positions");
   Emit(BuildFailsafe(w,6,f));
   Emit(BuildHeartbeat(w,7,1783416705000));
   Emit(BuildClock(w,8,7200,1792375200000));
   Emit(BuildBye(w,9,Text("")));
   return 0;
  }

static void Show(CJsonWriter &w,const char *key,const string &value) { w.Str(string(key),value); }

static int Parse()
  {
   std::string line;
   CJsonReader r;
   while(std::getline(std::cin,line))
     {
      CJsonWriter w;
      w.BeginObject();
      string text;
      text.chars=Utf16(line);
      string type="";
      long reply_to=0;
      string problem="";
      if(!r.Parse(text))
         Show(w,"error",r.Error());
      else if(!ReadReplyHeader(r,type,reply_to,problem))
         Show(w,"error",problem);
      else if(type==MT5B_MSG_COMMAND)
        {
         SCommand c;
         if(ParseCommand(r,c,problem))
           {
            Show(w,"kind",type);
            w.Int(string("reply_to"),c.reply_to);
            w.Int(string("command_id"),c.command_id);
            Show(w,"action",c.action);
            Show(w,"symbol",c.symbol);
            Show(w,"side",c.side);
            w.Num(string("volume"),c.volume,8);
            w.Num(string("sl"),c.sl,8);
            w.Num(string("tp"),c.tp,8);
            w.Int(string("ticket"),c.ticket);
            Show(w,"reason_code",c.reason_code);
            Show(w,"reason",c.reason);
           }
         else
           {
            Show(w,"error",problem);
            long id=-1;
            if(ReadCommandId(r,id))
               w.Int(string("command_id"),id);
           }
        }
      else if(type==MT5B_MSG_WELCOME)
        {
         SWelcome m;
         if(ParseWelcome(r,m,problem))
           {
            Show(w,"kind",type);
            w.Int(string("reply_to"),m.reply_to);
            w.Int(string("deadline_ms"),m.deadline_ms);
            w.Int(string("heartbeat_ms"),m.heartbeat_ms);
            w.Int(string("stale_after_ms"),m.stale_after_ms);
            w.Int(string("failsafe_silence_ms"),m.failsafe_silence_ms);
            w.Num(string("equity_floor"),m.equity_floor,2);
            w.Int(string("max_requests_per_minute"),m.max_requests_per_minute);
            Show(w,"journal_id",m.journal_id);
            // what the EA applies: its own ranges (the session calls ClampWelcome)
            ClampWelcome(m);
            w.Int(string("applied_deadline_ms"),m.deadline_ms);
            w.Int(string("applied_heartbeat_ms"),m.heartbeat_ms);
            w.Int(string("applied_failsafe_silence_ms"),m.failsafe_silence_ms);
           }
         else
            Show(w,"error",problem);
        }
      else if(type==MT5B_MSG_ERROR)
        {
         SErrorReply e;
         if(ParseError(r,e,problem))
           {
            Show(w,"kind",type);
            w.Int(string("reply_to"),e.reply_to);
            Show(w,"code",e.code);
            Show(w,"message",e.message);
           }
         else
            Show(w,"error",problem);
        }
      else
         Show(w,"error",string("unknown type ")+type);
      w.EndObject();
      Emit(w.Text());
     }
   return 0;
  }

static int Prague()
  {
   long utc;
   while(std::cin>>utc)
      std::cout<<(long)PragueMidnightUtc(utc)<<" "<<PragueDayKey(utc)<<" "<<PragueOffsetSeconds(utc)<<"\n";
   return 0;
  }

static int Math()
  {
   std::string line;
   while(std::getline(std::cin,line))
     {
      std::istringstream in(line);
      std::string name;
      in>>name;
      if(name=="open")
        {
         double v,mn,st,mx;
         in>>v>>mn>>st>>mx;
         std::cout<<Ascii(DoubleToString(VolumeForOpen(v,mn,st,mx),8))<<"\n";
        }
      else if(name=="close")
        {
         double req,pos,mn,st;
         in>>req>>pos>>mn>>st;
         std::cout<<Ascii(DoubleToString(VolumeToClose(req,pos,mn,st),8))<<"\n";
        }
      else if(name=="grid")
        {
         double price,tick;
         int digits;
         in>>price>>tick>>digits;
         std::cout<<Ascii(DoubleToString(PriceOnGrid(price,tick,digits),digits))<<"\n";
        }
      else if(name=="stop")
        {
         double level,close_price,distance,point,tick;
         int is_buy,is_stop,digits;
         in>>level>>is_buy>>is_stop>>close_price>>distance>>point>>tick>>digits;
         int outcome=PlaceStop(level,is_buy!=0,is_stop!=0,close_price,distance,point,tick,digits);
         std::cout<<outcome<<" "<<Ascii(DoubleToString(level,digits))<<"\n";
        }
      else if(name=="retry")
        {
         // retry kind, filled, outcome
         uint code;
         in>>code;
         std::cout<<RetryKind(code)<<" "<<(IsFilled(code) ? 1 : 0)<<" "<<Ascii(OutcomeOf(code))<<"\n";
        }
      else if(name=="side")
        {
         // the order type an OPEN/ADD with this side gets, or "refused"; "-" stands for the empty side
         std::string side;
         in>>side;
         if(side=="-")
            side="";
         ENUM_ORDER_TYPE type=ORDER_TYPE_BUY;
         if(OpeningOrderType(FromAscii(side),type))
            std::cout<<(type==ORDER_TYPE_BUY ? "BUY" : "SELL")<<"\n";
         else
            std::cout<<"refused\n";
        }
      else if(name=="filling")
        {
         // execution mode, SYMBOL_FILLING_MODE, wanted: the policy CTrade would send, or "none"
         long exec,modes;
         int wanted;
         in>>exec>>modes>>wanted;
         ENUM_ORDER_TYPE_FILLING filling=ORDER_FILLING_FOK;
         if(FillingAsCTrade(exec,modes,(ENUM_ORDER_TYPE_FILLING)wanted,filling))
            std::cout<<(int)filling<<"\n";
         else
            std::cout<<"none\n";
        }
      else if(name=="result")
        {
         // outcome price volume: what FiniteResult leaves of a RESULT (nan/inf allowed)
         std::string outcome,price,volume;
         in>>outcome>>price>>volume;
         SResultInfo r;
         r.outcome=FromAscii(outcome);
         r.price=std::strtod(price.c_str(),nullptr);
         r.volume=std::strtod(volume.c_str(),nullptr);
         r.sl=0;
         r.tp=0;
         r.text=string("");
         bool finite=FiniteResult(r);
         std::cout<<(finite ? 1 : 0)<<" "<<Ascii(r.outcome)<<" "<<Ascii(JsonNumber(r.price,5))<<"\n";
        }
      else if(name=="written")
        {
         // a TICK with this bid: how many numbers the writer found not finite (the session does not send it)
         std::string bid;
         in>>bid;
         CJsonWriter w;
         STickInfo t;
         t.time_msc=1;
         t.bid=std::strtod(bid.c_str(),nullptr);
         t.ask=1.1;
         t.volume=0;
         t.balance=1;
         t.equity=1;
         t.margin=0;
         t.free_margin=1;
         t.round_trip_us=0;
         t.digits=5;
         MqlArray<SPositionInfo> none;
         BuildTick(w,1,t,none,0);
         std::cout<<w.BadNumbers()<<"\n";
        }
      else if(name=="journal")
        {
         std::string id;
         in>>id;
         std::cout<<(IsJournalId(FromAscii(id)) ? 1 : 0)<<"\n";
        }
      else if(name=="ussummer")
        {
         long day;
         in>>day;
         std::cout<<(UsSummerTime(day) ? 1 : 0)<<"\n";
        }
      else if(name=="number")
        {
         std::string value;
         int digits;
         in>>value>>digits;
         std::cout<<Ascii(JsonNumber(std::strtod(value.c_str(),nullptr),digits))<<"\n";
        }
      else if(name=="rate")
        {
         // rate LIMIT t1 t2 ...: for each request time, 1 if it may be sent (and is then recorded)
         int limit;
         in>>limit;
         CRateLimiter limiter;
         ulong t;
         std::string out;
         while(in>>t)
           {
            bool ok=limiter.CanSend(t,limit);
            if(ok)
               limiter.Record(t);
            out+=ok ? "1" : "0";
           }
         std::cout<<out<<"\n";
        }
      else if(name=="resendfrom")
        {
         // trusted point, now (server ms): where the re-send after a WELCOME starts
         long trusted,now;
         in>>trusted>>now;
         std::cout<<ResendFromMsc(trusted,now)<<"\n";
        }
      else if(name=="resendpick")
        {
         // resendpick FROM LIMIT t1 t2 ...: the indices of the deals sent again, space-separated, or "-"
         long from;
         int limit;
         in>>from>>limit;
         MqlArray<long> times;
         long t;
         int n=0;
         while(in>>t)
           {
            ArrayResize(times,n+1,0);
            times[n]=t;
            n++;
           }
         MqlArray<int> picked;
         int count=PickDealsToResend(times,n,from,limit,picked);
         std::string out;
         for(int k=0; k<count; k++)
            out+=(k>0 ? " " : "")+std::to_string(picked[k]);
         std::cout<<(count>0 ? out : "-")<<"\n";
        }
      else if(name=="offset")
        {
         // whole-hour offset and whether the two clocks agree on it
         long server,utc;
         in>>server>>utc;
         long offset=0;
         bool agree=WholeHourOffset(server,utc,offset);
         std::cout<<offset<<" "<<(agree ? 1 : 0)<<"\n";
        }
      else
         std::cout<<"?\n";
     }
   return 0;
  }

int main(int argc,char **argv)
  {
   std::string mode=argc>1 ? argv[1] : "";
   if(mode=="frames")
      return Frames();
   if(mode=="parse")
      return Parse();
   if(mode=="prague")
      return Prague();
   if(mode=="math")
      return Math();
   std::cerr<<"usage: harness frames|parse|prague|math\n";
   return 2;
  }
